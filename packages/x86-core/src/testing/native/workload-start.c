/* Freestanding entry for x86-core: RDI = rounds on entry; the checksum is left in RAX at HLT. */
#include <stdint.h>

uint64_t workload(uint64_t rounds);

__attribute__((naked, noreturn, section(".text.start"))) void _start(void) {
  __asm__ volatile(
      "call workload\n\t"
      "1: hlt\n\t"
      "jmp 1b\n\t");
}
