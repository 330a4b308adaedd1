import type { SecondStage } from "@visorlab/x86-core";

/**
 * A second-level address translation a {@link VmxCpu} plugs into its
 * processor while "enable EPT" is 1: implemented by `@visorlab/ept` and
 * attached with {@link VmxCpu.attachSecondLevel}. Its `translate` (from
 * x86-core's `SecondStage`) walks the tables of the active EPTP and reports
 * an EPT violation or misconfiguration through
 * {@link VmxCpu.eptViolation} / {@link VmxCpu.eptMisconfiguration}.
 *
 * The unit keeps the *guest-physical mappings* (tagged by EPTP) of one
 * logical processor; the VmxCpu keeps the *combined mappings* (x86-core TLBs
 * tagged by VPID and EPTP). Both survive VM exits and entries until INVEPT,
 * INVVPID or another invalidating event (SDM vol. 3C, 28.3).
 */
export interface SecondLevelTranslation extends SecondStage {
  /**
   * Whether an EPTP value passes the VM-entry checks (SDM vol. 3C, 26.2.1.1
   * and 24.6.11): a memory type and page-walk length the processor supports,
   * A/D enable only when supported, no reserved bit set.
   */
  isValidEptp(eptp: number): boolean;
  /** VM entry with EPT enabled: translate through `eptp` until {@link deactivate}. */
  activate(eptp: number, modeBasedExecute: boolean): void;
  /** VM exit: no translation is active. */
  deactivate(): void;
  /**
   * INVEPT's effect on the guest-physical mappings: type 1 (single-context)
   * drops those derived from `eptp`'s EPTRTA, type 2 (all-context) drops all.
   */
  invalidate(type: 1 | 2, eptp: number): void;
}
