import { main } from "./main";
process.exitCode = main(process.argv.slice(2), (line) => process.stdout.write(`${line}\n`));
