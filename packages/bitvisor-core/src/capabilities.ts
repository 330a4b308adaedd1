import { EPT_VPID_CAP, hasEptVpidCap, PROC_BASED2, type VmxProfile } from "@visorlab/vmx";

/** What the hypervisor may use, decided from the capability MSRs the way BitVisor's vt_init does. */
export interface VtCapabilities {
  /** EPT: the control is allowed, a 4-level walk and write-back paging structures are supported. */
  ept: boolean;
  /** 2 MiB EPT pages (IA32_VMX_EPT_VPID_CAP bit 16). */
  ept2m: boolean;
  /** INVEPT with the single-context type. */
  inveptSingle: boolean;
  /** INVEPT with the all-context type (recorded separately). */
  inveptAll: boolean;
  /** VPID: the control is allowed and INVVPID with its single-context type exists. */
  vpid: boolean;
}

/**
 * Reads IA32_VMX_PROCBASED_CTLS2 and IA32_VMX_EPT_VPID_CAP (SEEDS S5 step 1):
 * VPID is usable only with INVVPID and its single-context type; EPT only with
 * a 4-level walk and write-back paging structures; INVEPT's all-context type is
 * recorded separately from its single-context type.
 */
export function vtCapabilities(p: VmxProfile): VtCapabilities {
  const allowed2 = p.procBased2.allowed1;
  const cap = (n: number) => hasEptVpidCap(p, n);
  const invept = cap(EPT_VPID_CAP.INVEPT);
  return {
    ept:
      (allowed2 & PROC_BASED2.ENABLE_EPT) !== 0 &&
      cap(EPT_VPID_CAP.PAGE_WALK_LENGTH_4) &&
      cap(EPT_VPID_CAP.MEMORY_TYPE_WB),
    ept2m: cap(EPT_VPID_CAP.PDE_2MB_PAGES),
    inveptSingle: invept && cap(EPT_VPID_CAP.INVEPT_SINGLE_CONTEXT),
    inveptAll: invept && cap(EPT_VPID_CAP.INVEPT_ALL_CONTEXT),
    vpid:
      (allowed2 & PROC_BASED2.ENABLE_VPID) !== 0 &&
      cap(EPT_VPID_CAP.INVVPID) &&
      cap(EPT_VPID_CAP.INVVPID_SINGLE_CONTEXT),
  };
}
