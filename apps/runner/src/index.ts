export { main, type Print, type ScenarioOptions } from "./main";
export { SCENARIOS, type Scenario } from "./scenarios";
