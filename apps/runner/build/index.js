export { main } from "./main";
export { SCENARIOS } from "./scenarios";
