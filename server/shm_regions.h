/* shm_regions.h — client-owned system shared-memory regions registered through Triton's
 * extension (/v2/systemsharedmemory): name -> (key, offset, byte_size) and an open descriptor.
 * Outputs are written with pwrite after a size check, never through a mapping: an owner that
 * truncates its object (or a full tmpfs) makes that one request fail instead of raising SIGBUS
 * in the daemon. Keys are checked against a policy: an allowed prefix, and the daemon's own
 * pools are never accepted (by name or by inode, so a hard link does not get around it).
 * Regions are reference-counted so an unregister never closes a region a request still uses. */
#ifndef CLIPPREP_SHM_REGIONS_H
#define CLIPPREP_SHM_REGIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct shm_region shm_region;
typedef struct shm_regions shm_regions;

shm_regions *shm_regions_create(void);
void shm_regions_destroy(shm_regions *rs);

/* Policy: keys must start with prefix ("" = any); reserve_key refuses a key of the daemon's
 * own (its format=shm pool) by name and inode. Call before serving. */
void shm_regions_set_prefix(shm_regions *rs, const char *prefix);
void shm_regions_reserve_key(shm_regions *rs, const char *key);
/* true if a region of that name is registered (names share one namespace across the system
 * and CUDA registries, as in Triton). */
bool shm_regions_has(shm_regions *rs, const char *name);

/* key: a POSIX shm name ("/name"); it must exist and hold offset + byte_size bytes. */
bool shm_regions_register(shm_regions *rs, const char *name, const char *key, uint64_t offset,
                          uint64_t byte_size, cp_error *err);
/* A client's GPU buffer already opened (CUDA IPC) at dev_ptr on device_id; close(device, ptr)
 * is called when the last user lets go. */
bool shm_regions_register_device(shm_regions *rs, const char *name, void *dev_ptr,
                                 uint64_t byte_size, int device_id,
                                 void (*close)(int device, void *ptr), cp_error *err);
bool shm_regions_unregister(shm_regions *rs, const char *name); /* false if unknown */
void shm_regions_unregister_all(shm_regions *rs);

/* Takes a reference; NULL if unknown. *ptr is the region's first byte (at its offset) for
 * device regions, NULL for system regions (written with shm_region_write). */
shm_region *shm_regions_get(shm_regions *rs, const char *name, uint8_t **ptr, uint64_t *byte_size);
void shm_region_put(shm_region *r);

/* Writes n bytes at byte `at` of a system region (pwrite after checking the object still holds
 * them). On failure err holds a generic message for the client; the details are logged. */
bool shm_region_write(shm_region *r, uint64_t at, const void *src, size_t n, cp_error *err);

/* [{"name":…,"key":…,"offset":…,"byte_size":…}] of all regions (device regions:
 * {"name","device_id","byte_size"}), or of `name` only (NULL for all); malloc'd. Sets *found
 * false when a named region is unknown. */
char *shm_regions_status(shm_regions *rs, const char *name, bool *found);

#endif
