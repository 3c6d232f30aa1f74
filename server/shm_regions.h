/* shm_regions.h — client-owned system shared-memory regions registered through Triton's
 * extension (/v2/systemsharedmemory): name -> (key, offset, byte_size) mapped read-write.
 * Regions are reference-counted so an unregister never unmaps memory an in-flight request
 * is still writing; the mapping goes when the last user lets go. */
#ifndef CLIPPREP_SHM_REGIONS_H
#define CLIPPREP_SHM_REGIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

typedef struct shm_region shm_region;
typedef struct shm_regions shm_regions;

shm_regions *shm_regions_create(void);
void shm_regions_destroy(shm_regions *rs);

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

/* Takes a reference; NULL if unknown. *ptr is the region's first byte (at its offset). */
shm_region *shm_regions_get(shm_regions *rs, const char *name, uint8_t **ptr, uint64_t *byte_size);
void shm_region_put(shm_region *r);

/* [{"name":…,"key":…,"offset":…,"byte_size":…}] of all regions (device regions:
 * {"name","device_id","byte_size"}), or of `name` only (NULL for all); malloc'd. Sets *found
 * false when a named region is unknown. */
char *shm_regions_status(shm_regions *rs, const char *name, bool *found);

#endif
