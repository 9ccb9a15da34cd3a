/* Architecture-neutral stand-in so the BPF build needs no multiarch headers. */
#include <asm-generic/types.h>
