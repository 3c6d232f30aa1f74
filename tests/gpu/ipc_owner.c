/* ipc_owner.c — plays the inference server's side of Triton's CUDA shared memory in the GPU
 * test: allocates a zeroed device buffer, prints the base64 of its cudaIpcMemHandle_t, waits
 * for a line on stdin (the daemon has written into it), then dumps the buffer to OUTFILE.
 *   ipc_owner BYTE_SIZE OUTFILE */
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s BYTE_SIZE OUTFILE\n", argv[0]);
        return 2;
    }
    size_t bytes = strtoull(argv[1], NULL, 10);
    void *dev = NULL;
    cudaIpcMemHandle_t h;
    cudaError_t e = cudaMalloc(&dev, bytes);
    if (e == cudaSuccess)
        e = cudaMemset(dev, 0, bytes);
    if (e == cudaSuccess)
        e = cudaIpcGetMemHandle(&h, dev);
    if (e != cudaSuccess)
        return fprintf(stderr, "cuda: %s\n", cudaGetErrorString(e)), 1;
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *in = (const unsigned char *)&h;
    for (size_t i = 0; i < sizeof h; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < sizeof h ? (unsigned)in[i + 1] << 8 : 0) |
                     (i + 2 < sizeof h ? in[i + 2] : 0);
        putchar(abc[v >> 18 & 63]);
        putchar(abc[v >> 12 & 63]);
        putchar(i + 1 < sizeof h ? abc[v >> 6 & 63] : '=');
        putchar(i + 2 < sizeof h ? abc[v & 63] : '=');
    }
    putchar('\n');
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof line, stdin))
        return 1;
    unsigned char *host = malloc(bytes);
    if (!host || cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost) != cudaSuccess)
        return 1;
    FILE *f = fopen(argv[2], "wb");
    if (!f || fwrite(host, 1, bytes, f) != bytes)
        return 1;
    fclose(f);
    cudaFree(dev);
    return 0;
}
