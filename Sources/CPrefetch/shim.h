// Cache-prefetch hints, which Swift does not expose: header-only, nothing to link.
#ifndef CONCLAVE_PREFETCH_H
#define CONCLAVE_PREFETCH_H

#include <stddef.h>

/// Asks for the `lines` 64-byte cache lines from `address` on (a read, kept in all cache levels). A hint:
/// the CPU may drop it, and it never faults, so any address is safe.
static inline void conclave_prefetch(const void *address, size_t lines) {
    const char *p = (const char *)address;
    for (size_t i = 0; i < lines; i++) __builtin_prefetch(p + 64 * i, 0, 3);
}

#endif
