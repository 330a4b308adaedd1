export { VMX_TEST_LAYOUT, type VmxTestMachine, type VmxTestMachineOptions, vmxTestMachine } from "./machine";
