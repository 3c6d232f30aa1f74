/* ipc_reader.c — the consumer side of format=cuda_ipc, as an inference server would do it, in a
 * separate process: opens the daemon's exported device buffer from its base64 handle, copies
 * [offset, offset+byte_size) to the host and writes the bytes to stdout.
 *   ipc_reader BASE64_HANDLE DEVICE_ID OFFSET BYTE_SIZE > tensor.raw */
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int b64(char c)
{
    const char *abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = strchr(abc, c);
    return c && p ? (int)(p - abc) : -1;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s BASE64_HANDLE DEVICE_ID OFFSET BYTE_SIZE\n", argv[0]);
        return 2;
    }
    unsigned char raw[66] = {0};
    size_t n = 0;
    for (const char *s = argv[1]; s[0] && s[1] && s[2] && s[3] && n < 64; s += 4) {
        int a = b64(s[0]), b = b64(s[1]), c = s[2] == '=' ? 0 : b64(s[2]), d = s[3] == '=' ? 0 : b64(s[3]);
        if (a < 0 || b < 0 || c < 0 || d < 0)
            return fprintf(stderr, "bad base64\n"), 2;
        unsigned v = (unsigned)a << 18 | (unsigned)b << 12 | (unsigned)c << 6 | (unsigned)d;
        raw[n++] = (unsigned char)(v >> 16);
        raw[n++] = (unsigned char)(v >> 8);
        raw[n++] = (unsigned char)v;
    }
    if (n < 64)
        return fprintf(stderr, "handle must be 64 bytes\n"), 2;
    cudaIpcMemHandle_t h;
    memcpy(&h, raw, sizeof h);
    size_t off = strtoull(argv[3], NULL, 10), bytes = strtoull(argv[4], NULL, 10);
    void *base = NULL;
    cudaError_t e = cudaSetDevice(atoi(argv[2]));
    if (e == cudaSuccess)
        e = cudaIpcOpenMemHandle(&base, h, cudaIpcMemLazyEnablePeerAccess);
    unsigned char *host = malloc(bytes ? bytes : 1);
    if (e == cudaSuccess)
        e = cudaMemcpy(host, (char *)base + off, bytes, cudaMemcpyDeviceToHost);
    if (e != cudaSuccess)
        return fprintf(stderr, "cuda: %s\n", cudaGetErrorString(e)), 1;
    fwrite(host, 1, bytes, stdout);
    cudaIpcCloseMemHandle(base);
    free(host);
    return 0;
}
