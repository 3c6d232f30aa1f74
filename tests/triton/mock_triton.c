/* mock_triton.c — a mock of the Triton server side of the backend API (the TRITONSERVER_* and
 * TRITONBACKEND_* functions libtriton_clipprep.so calls, triton/triton_api.h), so that the
 * backend's KIND_GPU instances can be tested where no GPU exists (a real Triton refuses
 * KIND_GPU there). It dlopens the backend built on the emulated CUDA engine
 * (`make triton-backend-emu`: kernels/engine_emu.c, whose "device memory" is host memory) and,
 * in one child process per case (CLIPPREP_EMU_FAULTS / CLIPPREP_EMU_DEVICES are read once per
 * process), loads a KIND_CPU model and a KIND_GPU model and executes the same requests on both:
 *
 *  - every output of the KIND_GPU instance equals the KIND_CPU instance's bit for bit (FP32 and
 *    FP16), whether Triton gives the GPU memory asked for (on the instance's device), CPU memory
 *    or pinned memory, for small images (batched on the "GPU", hybrid JPEG decode included),
 *    an image larger than a staging slot (the executor's CPU path, copied into device memory)
 *    and an input handed over in two buffers;
 *  - a bad image fails only its own request, with the same error as on the CPU instance;
 *  - injected CUDA faults (docs/gpu.md) are invisible where the executor can redo the work,
 *    and fail exactly the requests whose output is in GPU memory with TRITONSERVER_ERROR_
 *    UNAVAILABLE naming the cause where it cannot (a lost GPU); the instance keeps serving and
 *    finalises cleanly;
 *  - the instance is created on the device Triton names, and refuses a device or a GPU that
 *    cannot run the kernels with a message naming the cause.
 *
 *   bin/tests/mock_triton BACKEND.so CORPUS_DIR      (CORPUS_DIR: tests/fuzz/corpus/decode)
 * MOCK_TRITON_VERBOSE=1 shows the children's stderr (the executor's own log lines).
 *
 * Built with -DMOCK_TRITON_CUDA (bin/tests/mock_triton_cuda, `make test-triton-gpu`) it loads
 * the real CUDA build (`make triton-backend`) on a machine with a GPU: "GPU memory" is then
 * cudaMalloc'd on the device the backend asks for, pinned memory cudaHostAlloc'd, and a GPU
 * output is read back at TRITONBACKEND_ResponseSend time with a copy on the legacy stream,
 * which does not wait for the executor's non-blocking streams: a response sent before its
 * batch's stream finished shows as a wrong tensor. The fault-injection cases need the
 * emulation and do not run there (they are listed as such). Without a device it prints SKIP
 * and passes, unless CLIPPREP_GPU_REQUIRE=1. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../triton/triton_api.h"
#include "../unit/jpeg_encoder.h"

#ifdef MOCK_TRITON_CUDA
#include <cuda_runtime_api.h>
#endif

/* ---- the mock server's objects -------------------------------------------------------------- */

struct TRITONSERVER_Error {
    TRITONSERVER_Error_Code code;
    char *msg;
};

struct TRITONSERVER_Message {
    char *json;
};

struct TRITONBACKEND_Model {
    const char *name;
    char *config;
    void *state;
};

struct TRITONBACKEND_ModelInstance {
    TRITONBACKEND_Model *model;
    TRITONSERVER_InstanceGroupKind kind;
    int32_t device;
    void *state;
};

struct TRITONBACKEND_Input {
    int64_t shape[2];
    uint8_t *data;
    uint64_t size;
    uint64_t split; /* 0: one buffer; else two, [0, split) and [split, size) */
};

/* What the mock answers to TRITONBACKEND_OutputBuffer. */
typedef enum { GIVE_ASKED, GIVE_CPU, GIVE_PINNED } give_policy;

struct TRITONBACKEND_Output {
    TRITONSERVER_DataType dt;
    int64_t shape[4];
    uint32_t dims;
    void *mem;        /* the buffer handed to the backend (device memory with MOCK_TRITON_CUDA) */
    uint8_t *buf;     /* its bytes in host memory, once the response is sent */
    uint64_t size;
    TRITONSERVER_MemoryType asked, given;
    int64_t asked_id, given_id;
};

struct TRITONBACKEND_Request {
    struct TRITONBACKEND_Input input;
    give_policy give;
    /* what the backend did with it */
    int responses, releases;
    bool failed;
    TRITONSERVER_Error_Code code;
    char msg[512];
    bool has_output;
    struct TRITONBACKEND_Output out;
};

struct TRITONBACKEND_Response {
    TRITONBACKEND_Request *req;
    bool has_output;
    struct TRITONBACKEND_Output out;
};

static atomic_int live_errors;   /* TRITONSERVER_Error objects not deleted */
static _Thread_local int thread_live_errors; /* ... created and deleted by this thread */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char last_error_log[1024];
static int error_logs;

#define FILL 0xEE /* a fresh output buffer: bytes the backend did not write show up */

/* ---- the API the backend calls -------------------------------------------------------------- */

TRITONSERVER_Error *TRITONSERVER_ErrorNew(TRITONSERVER_Error_Code code, const char *msg)
{
    TRITONSERVER_Error *e = malloc(sizeof *e);
    e->code = code;
    e->msg = strdup(msg ? msg : "");
    live_errors++;
    thread_live_errors++;
    return e;
}

void TRITONSERVER_ErrorDelete(TRITONSERVER_Error *error)
{
    if (!error)
        return;
    live_errors--;
    thread_live_errors--;
    free(error->msg);
    free(error);
}

const char *TRITONSERVER_ErrorMessage(TRITONSERVER_Error *error) { return error->msg; }

TRITONSERVER_Error *TRITONSERVER_MessageSerializeToJson(TRITONSERVER_Message *message,
                                                        const char **base, size_t *byte_size)
{
    *base = message->json;
    *byte_size = strlen(message->json);
    return NULL;
}

TRITONSERVER_Error *TRITONSERVER_MessageDelete(TRITONSERVER_Message *message)
{
    free(message->json);
    free(message);
    return NULL;
}

TRITONSERVER_Error *TRITONSERVER_LogMessage(TRITONSERVER_LogLevel level, const char *filename,
                                            const int line, const char *msg)
{
    (void)filename, (void)line;
    pthread_mutex_lock(&log_mu);
    if (level == TRITONSERVER_LOG_ERROR) {
        error_logs++;
        snprintf(last_error_log, sizeof last_error_log, "%s", msg);
    }
    pthread_mutex_unlock(&log_mu);
    if (getenv("MOCK_TRITON_VERBOSE"))
        fprintf(stderr, "[triton log %d] %s\n", (int)level, msg);
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_ApiVersion(uint32_t *major, uint32_t *minor)
{
    *major = 1;
    *minor = 19; /* Triton 2.51 */
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_ModelName(TRITONBACKEND_Model *model, const char **name)
{
    *name = model->name;
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_ModelConfig(TRITONBACKEND_Model *model,
                                              const uint32_t config_version,
                                              TRITONSERVER_Message **model_config)
{
    if (config_version != 1)
        return TRITONSERVER_ErrorNew(TRITONSERVER_ERROR_UNSUPPORTED, "config version");
    *model_config = malloc(sizeof **model_config);
    (*model_config)->json = strdup(model->config);
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_ModelState(TRITONBACKEND_Model *model, void **state)
{
    *state = model->state;
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_ModelSetState(TRITONBACKEND_Model *model, void *state)
{
    model->state = state;
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_ModelInstanceKind(TRITONBACKEND_ModelInstance *instance,
                                                    TRITONSERVER_InstanceGroupKind *kind)
{
    *kind = instance->kind;
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_ModelInstanceDeviceId(TRITONBACKEND_ModelInstance *instance,
                                                        int32_t *device_id)
{
    *device_id = instance->device;
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_ModelInstanceModel(TRITONBACKEND_ModelInstance *instance,
                                                     TRITONBACKEND_Model **model)
{
    *model = instance->model;
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_ModelInstanceState(TRITONBACKEND_ModelInstance *instance,
                                                     void **state)
{
    *state = instance->state;
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_ModelInstanceSetState(TRITONBACKEND_ModelInstance *instance,
                                                        void *state)
{
    instance->state = state;
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_ModelInstanceReportStatistics(
    TRITONBACKEND_ModelInstance *instance, TRITONBACKEND_Request *request, const bool success,
    const uint64_t exec_start_ns, const uint64_t compute_start_ns,
    const uint64_t compute_end_ns, const uint64_t exec_end_ns)
{
    (void)instance, (void)request, (void)success;
    if (!(exec_start_ns <= compute_start_ns && compute_start_ns <= compute_end_ns &&
          compute_end_ns <= exec_end_ns))
        return TRITONSERVER_ErrorNew(TRITONSERVER_ERROR_INVALID_ARG, "timestamps out of order");
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_ModelInstanceReportBatchStatistics(
    TRITONBACKEND_ModelInstance *instance, const uint64_t batch_size,
    const uint64_t exec_start_ns, const uint64_t compute_start_ns,
    const uint64_t compute_end_ns, const uint64_t exec_end_ns)
{
    (void)instance, (void)batch_size, (void)exec_start_ns, (void)compute_start_ns;
    (void)compute_end_ns, (void)exec_end_ns;
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_RequestInput(TRITONBACKEND_Request *request, const char *name,
                                               TRITONBACKEND_Input **input)
{
    if (strcmp(name, "images"))
        return TRITONSERVER_ErrorNew(TRITONSERVER_ERROR_NOT_FOUND, "no such input");
    *input = &request->input;
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_RequestRelease(TRITONBACKEND_Request *request,
                                                 uint32_t release_flags)
{
    if (release_flags != TRITONSERVER_REQUEST_RELEASE_ALL)
        return TRITONSERVER_ErrorNew(TRITONSERVER_ERROR_INVALID_ARG, "release flags");
    request->releases++;
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_InputProperties(TRITONBACKEND_Input *input, const char **name,
                                                  TRITONSERVER_DataType *datatype,
                                                  const int64_t **shape, uint32_t *dims_count,
                                                  uint64_t *byte_size, uint32_t *buffer_count)
{
    if (name)
        *name = "images";
    if (datatype)
        *datatype = TRITONSERVER_TYPE_BYTES;
    if (shape)
        *shape = input->shape;
    if (dims_count)
        *dims_count = 2;
    if (byte_size)
        *byte_size = input->size;
    if (buffer_count)
        *buffer_count = input->split ? 2 : 1;
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_InputBuffer(TRITONBACKEND_Input *input, const uint32_t index,
                                              const void **buffer, uint64_t *buffer_byte_size,
                                              TRITONSERVER_MemoryType *memory_type,
                                              int64_t *memory_type_id)
{
    uint64_t lo = index == 0 ? 0 : input->split;
    uint64_t hi = input->split && index == 0 ? input->split : input->size;
    *buffer = input->data + lo;
    *buffer_byte_size = hi - lo;
    *memory_type = TRITONSERVER_MEMORY_CPU;
    *memory_type_id = 0;
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_ResponseNew(TRITONBACKEND_Response **response,
                                              TRITONBACKEND_Request *request)
{
    *response = calloc(1, sizeof **response);
    (*response)->req = request;
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_ResponseOutput(TRITONBACKEND_Response *response,
                                                 TRITONBACKEND_Output **output, const char *name,
                                                 const TRITONSERVER_DataType datatype,
                                                 const int64_t *shape, const uint32_t dims_count)
{
    if (strcmp(name, "pixel_values") || dims_count != 4 || response->has_output)
        return TRITONSERVER_ErrorNew(TRITONSERVER_ERROR_INVALID_ARG, "unexpected output");
    response->has_output = true;
    response->out.dt = datatype;
    response->out.dims = dims_count;
    memcpy(response->out.shape, shape, sizeof(int64_t) * dims_count);
    *output = &response->out;
    return NULL;
}

/* GPU memory is what the emulated engine's device memory is: host memory (the engine copies
 * into it with memcpy where the real one runs cudaMemcpyAsync on the batch's stream); with
 * MOCK_TRITON_CUDA it is device memory. */
static void *mem_alloc(TRITONSERVER_MemoryType mt, int64_t id, size_t bytes)
{
#ifdef MOCK_TRITON_CUDA
    void *p = NULL;
    if (mt == TRITONSERVER_MEMORY_GPU)
        return cudaSetDevice((int)id) == cudaSuccess && cudaMalloc(&p, bytes) == cudaSuccess &&
                       cudaMemset(p, FILL, bytes) == cudaSuccess &&
                       cudaDeviceSynchronize() == cudaSuccess
                   ? p
                   : NULL;
    if (mt == TRITONSERVER_MEMORY_CPU_PINNED) {
        if (cudaHostAlloc(&p, bytes, cudaHostAllocDefault) != cudaSuccess)
            return NULL;
        memset(p, FILL, bytes);
        return p;
    }
#else
    (void)mt, (void)id;
#endif
    void *h = malloc(bytes);
    if (h)
        memset(h, FILL, bytes);
    return h;
}

static void mem_free(TRITONSERVER_MemoryType mt, void *p)
{
#ifdef MOCK_TRITON_CUDA
    if (mt == TRITONSERVER_MEMORY_GPU) {
        cudaFree(p);
        return;
    }
    if (mt == TRITONSERVER_MEMORY_CPU_PINNED) {
        cudaFreeHost(p);
        return;
    }
#else
    (void)mt;
#endif
    free(p);
}

/* The output's bytes as the next step would read them now (a device buffer: a synchronous
 * copy on the legacy stream), then the buffer is released. */
static uint8_t *mem_take(struct TRITONBACKEND_Output *o)
{
    uint8_t *h = malloc(o->size ? o->size : 1);
#ifdef MOCK_TRITON_CUDA
    if (o->given == TRITONSERVER_MEMORY_GPU) {
        if (cudaMemcpy(h, o->mem, o->size, cudaMemcpyDeviceToHost) != cudaSuccess)
            memset(h, 0, o->size); /* (compared with the CPU answer: fails) */
    } else
#endif
    {
        memcpy(h, o->mem, o->size);
    }
    mem_free(o->given, o->mem);
    o->mem = NULL;
    return h;
}

TRITONSERVER_Error *TRITONBACKEND_OutputBuffer(TRITONBACKEND_Output *output, void **buffer,
                                               const uint64_t buffer_byte_size,
                                               TRITONSERVER_MemoryType *memory_type,
                                               int64_t *memory_type_id)
{
    TRITONBACKEND_Response *resp =
        (TRITONBACKEND_Response *)((char *)output - offsetof(TRITONBACKEND_Response, out));
    output->asked = *memory_type;
    output->asked_id = *memory_type_id;
    switch (resp->req->give) {
    case GIVE_CPU: *memory_type = TRITONSERVER_MEMORY_CPU, *memory_type_id = 0; break;
    case GIVE_PINNED: *memory_type = TRITONSERVER_MEMORY_CPU_PINNED, *memory_type_id = 0; break;
    case GIVE_ASKED: break;
    }
    output->given = *memory_type;
    output->given_id = *memory_type_id;
    output->size = buffer_byte_size;
    output->mem = mem_alloc(output->given, output->given_id,
                            buffer_byte_size ? buffer_byte_size : 1);
    if (!output->mem)
        return TRITONSERVER_ErrorNew(TRITONSERVER_ERROR_UNAVAILABLE, "mock: allocation failed");
    *buffer = output->mem;
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_ResponseSend(TRITONBACKEND_Response *response,
                                               const uint32_t send_flags,
                                               TRITONSERVER_Error *error)
{
    TRITONBACKEND_Request *r = response->req;
    r->responses++;
    if (send_flags != TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        snprintf(r->msg, sizeof r->msg, "(send flags %u)", send_flags);
    if (error) { /* Triton copies the error: the backend keeps (and deletes) it */
        r->failed = true;
        r->code = error->code;
        snprintf(r->msg, sizeof r->msg, "%s", error->msg);
        if (response->out.mem)
            mem_free(response->out.given, response->out.mem);
    } else if (response->has_output) {
        r->has_output = true;
        r->out = response->out;
        r->out.buf = mem_take(&r->out);
    }
    free(response);
    return NULL;
}

/* ---- the harness ---------------------------------------------------------------------------- */

typedef TRITONSERVER_Error *(*fn_backend)(TRITONBACKEND_Backend *);
typedef TRITONSERVER_Error *(*fn_model)(TRITONBACKEND_Model *);
typedef TRITONSERVER_Error *(*fn_instance)(TRITONBACKEND_ModelInstance *);
typedef TRITONSERVER_Error *(*fn_execute)(TRITONBACKEND_ModelInstance *,
                                          TRITONBACKEND_Request **, const uint32_t);
static struct {
    fn_backend initialize;
    fn_model model_init, model_fini;
    fn_instance inst_init, inst_fini;
    fn_execute execute;
} be;

static atomic_int failures;
#define EXPECT(cond, ...)                                                                  \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            printf("    FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                     \
            printf(__VA_ARGS__);                                                           \
            printf("\n");                                                                  \
            failures++;                                                                    \
        }                                                                                  \
    } while (0)

static const char *lib_path, *corpus_dir;

enum { IMG_MAX = 32 };
static blob images[IMG_MAX];
static const char *image_names[IMG_MAX];
static int n_images;

static int add_image(const char *name, blob b)
{
    image_names[n_images] = name;
    images[n_images] = b;
    return n_images++;
}

static blob read_file(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", corpus_dir, name);
    blob b = {0};
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "mock_triton: cannot read %s\n", path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    b.n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    b.p = malloc(b.n);
    if (fread(b.p, 1, b.n, f) != b.n)
        exit(2);
    fclose(f);
    return b;
}

/* A PNG whose first IDAT is corrupt (its header reads fine; decoding fails). */
static blob corrupt_png(blob png)
{
    blob b = {malloc(png.n), png.n};
    memcpy(b.p, png.p, png.n);
    for (size_t i = 8; i + 12 < b.n; i++)
        if (!memcmp(b.p + i, "IDAT", 4)) {
            uint32_t len = (uint32_t)b.p[i - 4] << 24 | (uint32_t)b.p[i - 3] << 16 |
                           (uint32_t)b.p[i - 2] << 8 | b.p[i - 1];
            for (uint32_t k = 2; k < len; k++) /* keep the zlib header */
                b.p[i + 4 + k] ^= 0x5A;
            break;
        }
    return b;
}

/* The test images: named corpus files (every decoder, alpha, grey, CMYK, EXIF rotation,
 * arithmetic coding, adversarial coefficients for the hybrid decode's guard) and generated
 * JPEGs: 640x480 4:2:0 (hybrid decode on the "GPU") and 1600x1200 (larger than a 4 MiB slot:
 * the executor's CPU path, copied into device memory). */
static int IMG_BIG, IMG_MID, IMG_CORRUPT, IMG_NOT_IMAGE;
static void load_images(void)
{
    static const char *const files[] = {"rgb.jpg",   "prog.jpg",       "gray.jpg",
                                        "cmyk.jpg",  "exif6.jpg",      "rgba.png",
                                        "pal.png",   "lossy.webp",     "arith420.jpg",
                                        "restart411.jpg", "randcoef420.jpg", "q16_422.jpg",
                                        "rgb24.bmp", "interlaced.gif", "gray_422.heic"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        add_image(files[i], read_file(files[i]));
    enc_spec mid = {.w = 640, .h = 480, .lay = &LAYOUTS[2], .mode = M_BASELINE, .quality = 90,
                    .seed = 7};
    enc_spec big = {.w = 1600, .h = 1200, .lay = &LAYOUTS[2], .mode = M_BASELINE,
                    .quality = 85, .seed = 11};
    IMG_MID = add_image("generated 640x480 4:2:0", encode(&mid));
    IMG_BIG = add_image("generated 1600x1200 4:2:0", encode(&big));
    blob png = read_file("rgb.png");
    IMG_CORRUPT = add_image("rgb.png with a corrupt IDAT", corrupt_png(png));
    free(png.p);
    static const char junk[] = "this is not an image at all";
    blob j = {malloc(sizeof junk), sizeof junk};
    memcpy(j.p, junk, sizeof junk);
    IMG_NOT_IMAGE = add_image("not an image", j);
}

typedef struct {
    TRITONBACKEND_Model model;
    TRITONBACKEND_ModelInstance inst;
    bool loaded, instance_ok;
    char init_error[512];
    TRITONSERVER_Error_Code init_code;
    size_t slot; /* bytes per image */
} mock_model;

static void model_config(char *out, size_t cap, const char *dtype, const char *kind,
                         const char *extra_params)
{
    snprintf(out, cap,
             "{\"name\":\"m\",\"backend\":\"clipprep\",\"max_batch_size\":32,"
             "\"input\":[{\"name\":\"images\",\"data_type\":\"TYPE_STRING\",\"dims\":[\"1\"]}],"
             "\"output\":[{\"name\":\"pixel_values\",\"data_type\":\"%s\","
             "\"dims\":[\"3\",\"224\",\"224\"]}],"
             "\"instance_group\":[{\"kind\":\"%s\",\"count\":1}],"
             "\"parameters\":{\"profile\":{\"string_value\":\"clip-224\"},"
             "\"threads\":{\"string_value\":\"2\"}%s}}",
             dtype, kind, extra_params);
}

/* Loads a model and one instance of `kind` on `device` (as Triton does: ModelInitialize,
 * then ModelInstanceInitialize; a failed instance leaves the model to be finalised). */
static void model_load(mock_model *m, const char *name, const char *dtype,
                       TRITONSERVER_InstanceGroupKind kind, int device, const char *params)
{
    memset(m, 0, sizeof *m);
    char config[2048];
    model_config(config, sizeof config, dtype,
                 kind == TRITONSERVER_INSTANCEGROUPKIND_GPU ? "KIND_GPU" : "KIND_CPU", params);
    m->model.name = name;
    m->model.config = strdup(config);
    m->inst = (TRITONBACKEND_ModelInstance){&m->model, kind, device, NULL};
    m->slot = (size_t)3 * 224 * 224 * (strcmp(dtype, "TYPE_FP16") ? 4 : 2);
    TRITONSERVER_Error *e = be.model_init(&m->model);
    if (e) {
        snprintf(m->init_error, sizeof m->init_error, "%s", e->msg);
        m->init_code = e->code;
        TRITONSERVER_ErrorDelete(e);
        return;
    }
    m->loaded = true;
    e = be.inst_init(&m->inst);
    if (e) {
        snprintf(m->init_error, sizeof m->init_error, "%s", e->msg);
        m->init_code = e->code;
        TRITONSERVER_ErrorDelete(e);
        return;
    }
    m->instance_ok = true;
}

static void model_unload(mock_model *m)
{
    TRITONSERVER_Error *e;
    if (m->instance_ok && (e = be.inst_fini(&m->inst))) {
        EXPECT(0, "instance finalize: %s", e->msg);
        TRITONSERVER_ErrorDelete(e);
    }
    if (m->loaded && (e = be.model_fini(&m->model))) {
        EXPECT(0, "model finalize: %s", e->msg);
        TRITONSERVER_ErrorDelete(e);
    }
    free(m->model.config);
}

/* A request: its images (indices into images[]), how its output buffer is given. */
typedef struct {
    int img[8];
    int n;
    give_policy give;
    bool split; /* the input in two buffers */
} req_spec;

static void request_build(TRITONBACKEND_Request *r, const req_spec *s)
{
    memset(r, 0, sizeof *r);
    size_t size = 0;
    for (int i = 0; i < s->n; i++)
        size += 4 + images[s->img[i]].n;
    r->input.data = malloc(size);
    r->input.size = size;
    r->input.shape[0] = s->n;
    r->input.shape[1] = 1;
    size_t at = 0;
    for (int i = 0; i < s->n; i++) {
        const blob *b = &images[s->img[i]];
        uint32_t n = (uint32_t)b->n;
        uint8_t len[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
        memcpy(r->input.data + at, len, 4);
        memcpy(r->input.data + at + 4, b->p, b->n);
        at += 4 + b->n;
    }
    r->input.split = s->split ? size / 2 + 1 : 0;
    r->give = s->give;
}

static void request_free(TRITONBACKEND_Request *r)
{
    free(r->input.data);
    if (r->has_output)
        free(r->out.buf);
}

/* Executes specs[0..n) in one execute call of m's instance; checks the protocol (one final
 * response and one release per request, no error leaked, outputs of the right shape). */
static void execute(mock_model *m, const req_spec *specs, int n, TRITONBACKEND_Request *reqs)
{
    TRITONBACKEND_Request *ptrs[16];
    for (int i = 0; i < n; i++) {
        request_build(&reqs[i], &specs[i]);
        ptrs[i] = &reqs[i];
    }
    int errors_before = thread_live_errors;
    TRITONSERVER_Error *e = be.execute(&m->inst, ptrs, (uint32_t)n);
    EXPECT(!e, "execute returned an error: %s", e ? e->msg : "");
    if (e)
        TRITONSERVER_ErrorDelete(e);
    EXPECT(thread_live_errors == errors_before, "%d error objects leaked",
           thread_live_errors - errors_before);
    for (int i = 0; i < n; i++) {
        TRITONBACKEND_Request *r = &reqs[i];
        EXPECT(r->responses == 1 && r->releases == 1, "request %d: %d responses, %d releases",
               i, r->responses, r->releases);
        if (r->failed)
            continue;
        EXPECT(r->has_output, "request %d: no output", i);
        EXPECT(r->out.dt == (m->slot == 3 * 224 * 224 * 4 ? TRITONSERVER_TYPE_FP32
                                                          : TRITONSERVER_TYPE_FP16) &&
                   r->out.shape[0] == specs[i].n && r->out.shape[1] == 3 &&
                   r->out.shape[2] == 224 && r->out.shape[3] == 224 &&
                   r->out.size == m->slot * (size_t)specs[i].n,
               "request %d: output dtype/shape/size", i);
        bool gpu = m->inst.kind == TRITONSERVER_INSTANCEGROUPKIND_GPU;
        EXPECT(r->out.asked == (gpu ? TRITONSERVER_MEMORY_GPU : TRITONSERVER_MEMORY_CPU) &&
                   r->out.asked_id == (gpu ? m->inst.device : 0),
               "request %d: asked memory type %d id %lld", i, (int)r->out.asked,
               (long long)r->out.asked_id);
    }
}

/* The CPU instance's answer for every image alone (the reference of these tests: the CPU path
 * itself equals the Python references, tests/triton/test_backend.py), or its error. */
typedef struct {
    uint8_t *out[IMG_MAX];
    char err[IMG_MAX][512];
} cpu_answers;

static void cpu_reference(const char *dtype, cpu_answers *a)
{
    mock_model cpu;
    model_load(&cpu, "cpu", dtype, TRITONSERVER_INSTANCEGROUPKIND_CPU, 0, "");
    EXPECT(cpu.instance_ok, "CPU model: %s", cpu.init_error);
    for (int i = 0; cpu.instance_ok && i < n_images; i++) {
        req_spec s = {{i}, 1, GIVE_ASKED, false};
        TRITONBACKEND_Request r;
        execute(&cpu, &s, 1, &r);
        a->out[i] = NULL;
        a->err[i][0] = 0;
        if (r.failed) {
            snprintf(a->err[i], sizeof a->err[i], "%s", r.msg);
        } else {
            a->out[i] = r.out.buf;
            r.has_output = false;
        }
        request_free(&r);
    }
    model_unload(&cpu);
}

typedef enum { OK, FAILS_BAD_IMAGE, FAILS_GPU } outcome;

/* The request's answer: OK with every image equal to the CPU's, or the expected failure. */
static void check_request(const char *what, const mock_model *m, const req_spec *s,
                          const TRITONBACKEND_Request *r, outcome want, const cpu_answers *ref)
{
    if (want == OK) {
        EXPECT(!r->failed, "%s: failed: %s", what, r->msg);
        if (r->failed)
            return;
        TRITONSERVER_MemoryType give_mt = s->give == GIVE_CPU      ? TRITONSERVER_MEMORY_CPU
                                          : s->give == GIVE_PINNED ? TRITONSERVER_MEMORY_CPU_PINNED
                                                                   : TRITONSERVER_MEMORY_GPU;
        EXPECT(r->out.given == give_mt, "%s: memory type %d", what, (int)r->out.given);
        for (int i = 0; i < s->n; i++) {
            const uint8_t *want_px = ref->out[s->img[i]];
            EXPECT(want_px, "%s: image %d (%s) has no CPU answer: %s", what, i,
                   image_names[s->img[i]], ref->err[s->img[i]]);
            if (!want_px)
                continue;
            const uint8_t *got = r->out.buf + m->slot * (size_t)i;
            size_t diff = 0;
            for (size_t k = 0; k < m->slot; k++)
                diff += got[k] != want_px[k];
            EXPECT(diff == 0, "%s: image %d (%s): %zu of %zu bytes differ from the KIND_CPU "
                   "instance's", what, i, image_names[s->img[i]], diff, m->slot);
        }
        return;
    }
    EXPECT(r->failed, "%s: succeeded, expected a failure", what);
    if (!r->failed)
        return;
    if (want == FAILS_GPU) {
        EXPECT(r->code == TRITONSERVER_ERROR_UNAVAILABLE &&
                   strstr(r->msg, "unavailable: GPU failure: the result could not be written "
                                  "to its device memory"),
               "%s: code %d, message \"%s\"", what, (int)r->code, r->msg);
    } else {
        /* the first bad image's message, as the CPU instance gives it for that image alone */
        int bad = -1;
        for (int i = 0; bad < 0 && i < s->n; i++)
            if (!ref->out[s->img[i]])
                bad = i;
        char want_msg[600] = "";
        if (bad >= 0) /* "image 0: ..." alone, "image <bad>: ..." in the batch */
            snprintf(want_msg, sizeof want_msg, "image %d:%s", bad,
                     strchr(ref->err[s->img[bad]], ':') + 1);
        EXPECT(r->code == TRITONSERVER_ERROR_INVALID_ARG && bad >= 0 &&
                   !strcmp(r->msg, want_msg),
               "%s: code %d, message \"%s\", expected \"%s\"", what, (int)r->code, r->msg,
               want_msg);
    }
}

/* The standard batch: one execute call with requests of every kind. */
static int standard_batch(req_spec *specs, int include_bad)
{
    int n = 0;
    specs[n++] = (req_spec){{0, IMG_MID, 5}, 3, GIVE_ASKED, false};       /* rgb.jpg, 640, rgba */
    specs[n++] = (req_spec){{IMG_BIG, 6, 14}, 3, GIVE_ASKED, false};    /* big: CPU path */
    specs[n++] = (req_spec){{1}, 1, GIVE_CPU, false};                      /* host memory */
    specs[n++] = (req_spec){{2, 7}, 2, GIVE_PINNED, false};                /* pinned memory */
    specs[n++] = (req_spec){{3, 4, 8, 9, 10, 11, 12, 13}, 8, GIVE_ASKED, true}; /* 2 buffers */
    if (include_bad) {
        specs[n++] = (req_spec){{0, IMG_CORRUPT, 2}, 3, GIVE_ASKED, false}; /* fails at decode */
        specs[n++] = (req_spec){{IMG_NOT_IMAGE}, 1, GIVE_ASKED, false};     /* fails at header */
    }
    return n;
}

typedef struct {
    const char *name;
    const char *faults;       /* CLIPPREP_EMU_FAULTS, or NULL */
    const char *devices;      /* CLIPPREP_EMU_DEVICES, or NULL */
    int device;               /* the KIND_GPU instance's device */
    /* expectations */
    bool instance_fails;      /* the instance is refused at load ... */
    const char *init_error;   /* ... with this in its message */
    bool gpu_fails;           /* requests whose output is in GPU memory fail (UNAVAILABLE) */
    bool gpu_lost;            /* ... because the GPU was taken out (logged to Triton) */
    bool big_fails;           /* only the request with the image larger than a slot fails */
    bool fp16;                /* also an FP16 model */
    bool two_instances;       /* two instances on the device, executing at once */
    bool out_of_range;        /* the instance's device is one past the visible ones */
} test_case;

typedef struct {
    const test_case *c;
    mock_model *m;
    const cpu_answers *ref;
    const char *dtype;
    int n_rounds;
} rounds_arg;
static void rounds(const rounds_arg *a);
static void *rounds_thread(void *arg);

static void run_dtype(const test_case *c, const char *dtype)
{
    cpu_answers ref;
    cpu_reference(dtype, &ref);
    EXPECT(ref.err[IMG_CORRUPT][0] && ref.err[IMG_NOT_IMAGE][0],
           "the bad images must fail on the CPU instance too");
    for (int i = 0; i < n_images; i++)
        EXPECT(i == IMG_CORRUPT || i == IMG_NOT_IMAGE || ref.out[i],
               "CPU instance: image %s: %s", image_names[i], ref.err[i]);

    mock_model gpu;
    char params[128];
    /* 8 MiB of staging: 4 MiB per slot, so the 1600x1200 image takes the CPU path */
    snprintf(params, sizeof params, ",\"staging_bytes\":{\"string_value\":\"%d\"}", 8 << 20);
    model_load(&gpu, "gpu", dtype, TRITONSERVER_INSTANCEGROUPKIND_GPU, c->device, params);
    if (c->instance_fails) {
        EXPECT(gpu.loaded && !gpu.instance_ok && gpu.init_code == TRITONSERVER_ERROR_UNAVAILABLE &&
                   strstr(gpu.init_error, c->init_error),
               "instance load: expected a refusal naming \"%s\", got \"%s\"", c->init_error,
               gpu.instance_ok ? "(loaded)" : gpu.init_error);
    } else {
        EXPECT(gpu.instance_ok, "KIND_GPU instance: %s", gpu.init_error);
    }
    if (c->two_instances && gpu.instance_ok) {
        /* a second instance of the same model on the same device (instance_group count: 2):
           both execute at once, as Triton's instance threads do */
        mock_model second = gpu;
        second.inst.state = NULL;
        TRITONSERVER_Error *e = be.inst_init(&second.inst);
        EXPECT(!e, "second instance: %s", e ? e->msg : "");
        if (e) {
            TRITONSERVER_ErrorDelete(e);
        } else {
            rounds_arg a[2] = {{c, &gpu, &ref, dtype, 4}, {c, &second, &ref, dtype, 4}};
            pthread_t t;
            pthread_create(&t, NULL, rounds_thread, &a[1]);
            rounds(&a[0]);
            pthread_join(t, NULL);
            if ((e = be.inst_fini(&second.inst))) {
                EXPECT(0, "second instance finalize: %s", e->msg);
                TRITONSERVER_ErrorDelete(e);
            }
        }
    } else if (gpu.instance_ok) {
        rounds_arg a = {c, &gpu, &ref, dtype, 2};
        rounds(&a);
    }
    if (c->gpu_lost)
        EXPECT(error_logs > 0 && strstr(last_error_log, "taken out of service"),
               "no Triton error log about the lost GPU (last: \"%s\")", last_error_log);
    model_unload(&gpu);
    for (int i = 0; i < n_images; i++)
        free(ref.out[i]);
}

/* Executes the standard batch `n_rounds` times on m's instance, checking every answer. */
static void rounds(const rounds_arg *a)
{
    const test_case *c = a->c;
    for (int round = 0; round < a->n_rounds; round++) {
        req_spec specs[16];
        int n = standard_batch(specs, 1);
        TRITONBACKEND_Request reqs[16];
        execute(a->m, specs, n, reqs);
        for (int i = 0; i < n; i++) {
            outcome want = OK;
            bool has_bad = false;
            for (int k = 0; k < specs[i].n; k++)
                has_bad |= specs[i].img[k] == IMG_CORRUPT || specs[i].img[k] == IMG_NOT_IMAGE;
            bool has_big = specs[i].img[0] == IMG_BIG;
            bool on_gpu = specs[i].give == GIVE_ASKED;
            if (has_bad && specs[i].img[0] == IMG_NOT_IMAGE)
                want = FAILS_BAD_IMAGE; /* refused before anything runs */
            else if (c->gpu_fails && on_gpu)
                want = FAILS_GPU; /* (with a bad image: its good image 0 fails first) */
            else if (has_bad)
                want = FAILS_BAD_IMAGE;
            else if (c->big_fails && has_big && round == 0)
                want = FAILS_GPU;
            char what[200];
            snprintf(what, sizeof what, "%s %s instance %p round %d request %d", c->name,
                     a->dtype, (void *)a->m, round, i);
            check_request(what, a->m, &specs[i], &reqs[i], want, a->ref);
            request_free(&reqs[i]);
        }
    }
}

static void *rounds_thread(void *arg)
{
    rounds(arg);
    return NULL;
}

static int visible_devices(void)
{
#ifdef MOCK_TRITON_CUDA
    int n = 0;
    return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
#else
    const char *d = getenv("CLIPPREP_EMU_DEVICES");
    return d ? atoi(d) : 1;
#endif
}

static int run_case(const test_case *given)
{
    test_case cc = *given, *c = &cc;
    char want_error[128];
    if (c->out_of_range) {
        int n = visible_devices();
        c->device = n;
        snprintf(want_error, sizeof want_error, "device %d is not one of the %d visible", n, n);
        c->init_error = want_error;
    }
    if (c->faults)
        setenv("CLIPPREP_EMU_FAULTS", c->faults, 1);
    else
        unsetenv("CLIPPREP_EMU_FAULTS");
    if (c->devices)
        setenv("CLIPPREP_EMU_DEVICES", c->devices, 1);
    else
        unsetenv("CLIPPREP_EMU_DEVICES");
    void *h = dlopen(lib_path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        printf("    FAIL: dlopen %s: %s\n", lib_path, dlerror());
        return 1;
    }
    be.initialize = (fn_backend)dlsym(h, "TRITONBACKEND_Initialize");
    be.model_init = (fn_model)dlsym(h, "TRITONBACKEND_ModelInitialize");
    be.model_fini = (fn_model)dlsym(h, "TRITONBACKEND_ModelFinalize");
    be.inst_init = (fn_instance)dlsym(h, "TRITONBACKEND_ModelInstanceInitialize");
    be.inst_fini = (fn_instance)dlsym(h, "TRITONBACKEND_ModelInstanceFinalize");
    be.execute = (fn_execute)dlsym(h, "TRITONBACKEND_ModelInstanceExecute");
    if (!be.initialize || !be.model_init || !be.model_fini || !be.inst_init || !be.inst_fini ||
        !be.execute) {
        printf("    FAIL: the backend lacks an entry point\n");
        return 1;
    }
    TRITONSERVER_Error *e = be.initialize(NULL);
    EXPECT(!e, "TRITONBACKEND_Initialize: %s", e ? e->msg : "");
    run_dtype(c, "TYPE_FP32");
    if (c->fp16)
        run_dtype(c, "TYPE_FP16");
    EXPECT(live_errors == 0, "%d error objects leaked", (int)live_errors);
    return failures ? 1 : 0;
}

/* An instance kind the backend does not run is refused with a message naming the kinds. */
static int run_kind_case(void)
{
    void *h = dlopen(lib_path, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return 1;
    be.model_init = (fn_model)dlsym(h, "TRITONBACKEND_ModelInitialize");
    be.model_fini = (fn_model)dlsym(h, "TRITONBACKEND_ModelFinalize");
    be.inst_init = (fn_instance)dlsym(h, "TRITONBACKEND_ModelInstanceInitialize");
    be.inst_fini = (fn_instance)dlsym(h, "TRITONBACKEND_ModelInstanceFinalize");
    mock_model m;
    model_load(&m, "model-kind", "TYPE_FP32", TRITONSERVER_INSTANCEGROUPKIND_MODEL, 0, "");
    EXPECT(m.loaded && !m.instance_ok && m.init_code == TRITONSERVER_ERROR_UNSUPPORTED &&
               strstr(m.init_error, "KIND_CPU") && strstr(m.init_error, "KIND_GPU"),
           "KIND_MODEL: \"%s\"", m.init_error);
    model_unload(&m);
    /* staging_bytes below 1 MiB refuses the model, naming the key */
    model_load(&m, "small-staging", "TYPE_FP32", TRITONSERVER_INSTANCEGROUPKIND_GPU, 0,
               ",\"staging_bytes\":{\"string_value\":\"4096\"}");
    EXPECT(!m.loaded && m.init_code == TRITONSERVER_ERROR_INVALID_ARG &&
               strstr(m.init_error, "parameter staging_bytes: expected an integer 1048576.."),
           "staging_bytes 4096: \"%s\"", m.init_error);
    model_unload(&m);
    return failures ? 1 : 0;
}

static const test_case cases[] = {
    {.name = "exact", .fp16 = true},
    {.name = "two instances on one GPU at once", .two_instances = true},
    /* failures the executor redoes on the CPU path: invisible to the requests */
    {.name = "launch fails once", .faults = "launch@1"},
    {.name = "every launch fails (not sticky)", .faults = "launch@*"},
    {.name = "the first wait fails", .faults = "wait@1"},
    {.name = "direct copies into GPU memory fail", .faults = "copy@1-3"},
    /* the CPU path's copy into GPU memory fails: only that image's request */
    {.name = "the CPU-path copy into GPU memory fails", .faults = "direct@1", .big_fails = true},
    /* a lost GPU: outputs in GPU memory cannot be written any more */
    {.name = "GPU lost (sticky wait)", .faults = "wait@1:sticky", .gpu_fails = true,
     .gpu_lost = true},
    {.name = "GPU lost (sticky launch)", .faults = "launch@1:sticky", .gpu_fails = true,
     .gpu_lost = true},
    /* every copy into GPU memory fails, the GPU's and the CPU path's: exactly the requests
       whose output is in GPU memory fail (an executor writing there with a host memcpy
       instead, which the emulation could not tell from a device copy, would pass them) */
    {.name = "no copy into GPU memory works", .faults = "copy@*,direct@*", .gpu_fails = true},
    /* the device Triton names */
    {.name = "device 1 of 2, device 0 broken", .devices = "2", .device = 1,
     .faults = "dev0.launch@*:sticky,dev0.check@*"},
    {.name = "a device that is not there", .out_of_range = true, .instance_fails = true},
    {.name = "kernels cannot run on the device", .faults = "check@1", .instance_fails = true,
     .init_error = "the kernels cannot run there"},
};

#ifdef MOCK_TRITON_CUDA
/* Whether a case needs the emulated engine (CLIPPREP_EMU_* variables). */
static bool emulation_only(const test_case *c)
{
    return c->faults || c->devices;
}
#endif

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s BACKEND.so CORPUS_DIR\n", argv[0]);
        return 2;
    }
    lib_path = argv[1];
    corpus_dir = argv[2];
    load_images();
    setvbuf(stdout, NULL, _IONBF, 0);
    int n_cases = (int)(sizeof cases / sizeof *cases) + 1, passed = 0, not_run = 0;
#ifdef MOCK_TRITON_CUDA
    /* (CUDA does not survive fork: the parent never touches it) */
    pid_t probe = fork();
    if (probe == 0)
        exit(visible_devices() > 0 ? 0 : 3);
    int pst = 0;
    waitpid(probe, &pst, 0);
    if (!WIFEXITED(pst) || WEXITSTATUS(pst) != 0) {
        bool require = getenv("CLIPPREP_GPU_REQUIRE") && !strcmp(getenv("CLIPPREP_GPU_REQUIRE"), "1");
        printf("%s: mock_triton_cuda: no CUDA device here: the backend's KIND_GPU path did not "
               "run\n", require ? "FAIL" : "SKIP");
        return require ? 1 : 0;
    }
#endif
    for (int i = 0; i < n_cases; i++) {
        const char *name = i < n_cases - 1 ? cases[i].name
                                           : "KIND_MODEL and a tiny staging_bytes refused";
#ifdef MOCK_TRITON_CUDA
        if (i < n_cases - 1 && emulation_only(&cases[i])) {
            printf("not run - %s (fault injection needs the emulated engine: make "
                   "test-triton-mock)\n", name);
            not_run++;
            continue;
        }
#endif
        pid_t pid = fork();
        if (pid == 0) {
            if (!getenv("MOCK_TRITON_VERBOSE") && !freopen("/dev/null", "w", stderr))
                _exit(2);
            exit(i < n_cases - 1 ? run_case(&cases[i]) : run_kind_case()); /* (LeakSanitizer
                                                                   checks at exit) */
        }
        int st = 0;
        waitpid(pid, &st, 0);
        bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        if (WIFSIGNALED(st))
            printf("    FAIL: killed by signal %d\n", WTERMSIG(st));
        printf("%s - %s\n", ok ? "ok" : "not ok", name);
        passed += ok;
    }
    printf("mock_triton: %d passed, %d failed%s\n", passed, n_cases - not_run - passed,
           not_run ? " (the emulation-only cases were not run)" : "");
    return passed + not_run == n_cases ? 0 : 1;
}
