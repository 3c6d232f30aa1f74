/* fuzz_shm_regions.c — libFuzzer target: /v2 shared-memory region registration and output
 * writes (issue #13). One shm object of 64 KiB is created per run; the input chooses the key
 * (ours, the daemon's reserved one, a hard-to-parse one), offset and byte_size to register,
 * then a size the owner truncates the object to, then where and how much to write. Whatever
 * the input, no write may raise SIGBUS or land outside [offset, offset + byte_size), and the
 * reserved key is never registered.
 * Input: [key selector][8 B offset][8 B byte_size][8 B truncate-to][8 B at][4 B n][name...] */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../server/log.h"
#include "../../server/shm_regions.h"

#define OBJ_BYTES 65536

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 37)
        return 0;
    log_set_level(LOG_ERROR); /* the refusals are logged as warnings: expected here */
    char key[64], reserved[64];
    snprintf(key, sizeof key, "/clipprep-fuzz-%d", (int)getpid());
    snprintf(reserved, sizeof reserved, "/clipprep-fuzz-pool-%d", (int)getpid());
    int fd = shm_open(key, O_CREAT | O_RDWR | O_TRUNC, 0600);
    int pfd = shm_open(reserved, O_CREAT | O_RDWR | O_TRUNC, 0600);
    if (fd < 0 || pfd < 0 || ftruncate(fd, OBJ_BYTES) != 0 || ftruncate(pfd, OBJ_BYTES) != 0)
        abort();
    close(pfd);

    shm_regions *rs = shm_regions_create();
    shm_regions_set_prefix(rs, "/clipprep-fuzz-");
    shm_regions_reserve_key(rs, reserved);
    const char *pick[] = {key, reserved, "/clipprep-fuzz-missing", "/other", "/../etc", "/"};
    const char *k = pick[data[0] % 6];
    uint64_t offset = le64(data + 1), byte_size = le64(data + 9);
    uint64_t trunc_to = le64(data + 17) % (2 * OBJ_BYTES), at = le64(data + 25);
    uint32_t n = (data[33] | data[34] << 8 | (uint32_t)data[35] << 16) % (2 * OBJ_BYTES);
    char name[130];
    size_t nl = size - 36 < 129 ? size - 36 : 129;
    memcpy(name, data + 36, nl);
    name[nl] = '\0';

    cp_error err;
    if (shm_regions_register(rs, name, k, offset % (2 * OBJ_BYTES), byte_size % (2 * OBJ_BYTES),
                             &err)) {
        if (k == reserved)
            abort(); /* the daemon's own pool registered as a client region */
        uint8_t *ptr;
        uint64_t rsize;
        shm_region *r = shm_regions_get(rs, name, &ptr, &rsize);
        if (!r || ptr != NULL)
            abort();
        if (ftruncate(fd, (off_t)trunc_to) != 0) /* the owner shrinks (or grows) its object */
            abort();
        uint8_t *src = calloc(1, n ? n : 1);
        memset(src, 0xAB, n);
        bool wrote = shm_region_write(r, at, src, n, &err);
        if (wrote && (at > rsize || n > rsize - at))
            abort(); /* a write outside the registered region was accepted */
        free(src);
        shm_region_put(r);
    }
    shm_regions_destroy(rs);
    close(fd);
    shm_unlink(key);
    shm_unlink(reserved);
    return 0;
}
