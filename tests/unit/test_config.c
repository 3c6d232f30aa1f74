/* test_config.c — configuration: defaults, precedence (defaults < file < env < flags),
 * unknown keys/variables/flags named in errors, type/range/enum errors, size suffixes,
 * relative profiles_dir, cross-key validation, and the shipped config/clipprep.json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "test.h"

static char tmpdir[256];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        abort();
    }
    fputs(text, f);
    fclose(f);
}

/* Writes text to tmpdir/name and returns the path (static buffer per slot). */
static const char *tmp_config(const char *name, const char *text)
{
    static char paths[4][512];
    static int slot;
    char *p = paths[slot++ % 4];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    write_file(p, text);
    return p;
}

/* Repository files, whether the test runs from the repo root (make unit) or below it. */
static const char *repo_path(const char *rel)
{
    static char buf[512];
    static const char *prefixes[] = {"", "../", "../../", "../../../"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        snprintf(buf, sizeof buf, "%s%s", prefixes[i], rel);
        if (access(buf, R_OK) == 0) return buf;
    }
    return rel;
}

typedef struct {
    bool ok, help, version;
    cp_error err;
} load_result;

static load_result load(cp_config *cfg, char **argv, char **envp)
{
    int argc = 0;
    while (argv[argc]) argc++;
    load_result r = {0};
    r.help = r.version = true; /* must be reset by config_load */
    r.ok = config_load(cfg, argc, argv, envp, &r.help, &r.version, &r.err);
    if (!r.ok) fprintf(stderr, "    (config_load: %s)\n", r.err.message);
    return r;
}

static bool msg_has(const cp_error *e, const char *s)
{
    return strstr(e->message, s) != NULL;
}

/* apply one JSON text to defaults; returns success and leaves the message in *err */
static bool apply_json(cp_config *cfg, const char *text, cp_error *err)
{
    config_defaults(cfg);
    err->message[0] = 0;
    return config_apply_json_text(cfg, text, NULL, err) && config_validate(cfg, err);
}

/* cuda_devices: "", "all" or distinct numbers; cuda_sync: one of four words. */
TEST(cuda_devices_and_sync)
{
    cp_config c;
    cp_error err;
    config_defaults(&c);
    CHECK(strcmp(c.cuda_devices, "") == 0 && strcmp(c.cuda_sync, "auto") == 0);
    const char *good[] = {"", "all", "0", "1,0", "0,2,5", "63"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char text[96];
        snprintf(text, sizeof text, "{\"cuda_devices\": \"%s\"}", good[i]);
        CHECK(apply_json(&c, text, &err));
        CHECK(strcmp(c.cuda_devices, good[i]) == 0);
    }
    const char *bad[] = {"0,0", "-1", "64", "0,", ",1", "a", "0 1", "0x1", "all,1", "1000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[96];
        snprintf(text, sizeof text, "{\"cuda_devices\": \"%s\"}", bad[i]);
        CHECK(!apply_json(&c, text, &err));
        CHECK(msg_has(&err, "cuda_devices") && msg_has(&err, bad[i]));
    }
    const char *syncs[] = {"auto", "spin", "yield", "blocking"};
    for (size_t i = 0; i < 4; i++) {
        char text[96];
        snprintf(text, sizeof text, "{\"cuda_sync\": \"%s\"}", syncs[i]);
        CHECK(apply_json(&c, text, &err));
        CHECK(strcmp(c.cuda_sync, syncs[i]) == 0);
    }
    CHECK(!apply_json(&c, "{\"cuda_sync\": \"sleep\"}", &err));
    CHECK(msg_has(&err, "cuda_sync") && msg_has(&err, "sleep") && msg_has(&err, "blocking"));
    CHECK(!apply_json(&c, "{\"cuda_sync\": \"\"}", &err));
    /* from the environment too */
    char *argv[] = {"clipprepd", NULL};
    char *env[] = {"CLIPPREP_CUDA_DEVICES=1,3", "CLIPPREP_CUDA_SYNC=blocking", NULL};
    load_result r = load(&c, argv, env);
    CHECK(r.ok && strcmp(c.cuda_devices, "1,3") == 0 && strcmp(c.cuda_sync, "blocking") == 0);
    /* the emulated engine's variables are no keys: unknown outside the emulation build */
    char *emu[] = {"CLIPPREP_EMU_FAULTS=launch@1", NULL};
    r = load(&c, argv, emu);
#ifdef CLIPPREP_CUDA_EMULATION
    CHECK(r.ok);
#else
    CHECK(!r.ok && msg_has(&r.err, "CLIPPREP_EMU_FAULTS"));
#endif
}

TEST(defaults_are_documented_values)
{
    cp_config c;
    config_defaults(&c);
    CHECK(strcmp(c.host, "127.0.0.1") == 0);
    CHECK_EQ_INT(c.port, 8080);
    CHECK_EQ_INT(c.http_threads, 1);
    CHECK_EQ_INT(c.max_connections, 256);
    CHECK_EQ_INT(c.connection_timeout_s, 30);
    CHECK_EQ_INT(c.drain_timeout_s, 30);
    CHECK_EQ_INT(c.backend, BACKEND_AUTO);
    CHECK_EQ_INT(c.decode_on_gpu, GPU_DECODE_AUTO);
    CHECK_EQ_INT(c.cpu_workers, 0);
    CHECK_EQ_INT(c.max_batch_size, 32);
    CHECK_EQ_INT(c.max_queue_delay_us, 0);
    CHECK_EQ_INT(c.n_preferred_batch_sizes, 0);
    CHECK_EQ_INT(c.queue_capacity, 1024);
    CHECK_EQ_INT(c.staging_bytes, 512LL << 20);
    CHECK_EQ_INT(c.max_body_bytes, 64LL << 20);
    CHECK_EQ_INT(c.max_images_per_request, 256);
    CHECK_EQ_INT(c.max_pixels, 50000000);
    CHECK_EQ_INT(c.max_scans, 256);
    CHECK(strcmp(c.profiles_dir, "config/profiles") == 0);
    CHECK(strcmp(c.default_profile, "clip-224") == 0);
    CHECK_EQ_INT(c.log_level, LOG_INFO);
    cp_error err;
    CHECK(config_validate(&c, &err));
    CHECK(strcmp(backend_kind_name(BACKEND_CUDA), "cuda") == 0);
    CHECK(strcmp(log_level_name(LOG_WARN), "warn") == 0);
}

TEST(no_arguments_gives_defaults)
{
    cp_config c;
    char *argv[] = {"clipprepd", NULL};
    char *envp[] = {"PATH=/bin", "HOME=/root", NULL};
    load_result r = load(&c, argv, envp);
    CHECK(r.ok);
    CHECK(!r.help && !r.version);
    CHECK_EQ_INT(c.port, 8080);
    CHECK(strcmp(c.profiles_dir, "config/profiles") == 0);
}

TEST(precedence_file_env_flags)
{
    const char *path = tmp_config("prec.json",
                                  "{\"host\": \"0.0.0.0\", \"port\": 1000, \"max_batch_size\": 8,"
                                  " \"queue_capacity\": 7, \"log_level\": \"warn\"}");
    char flag_config[600];
    snprintf(flag_config, sizeof flag_config, "--config=%s", path);
    cp_config c;

    /* file only */
    {
        char *argv[] = {"clipprepd", flag_config, NULL};
        char *envp[] = {NULL};
        load_result r = load(&c, argv, envp);
        CHECK(r.ok);
        CHECK_EQ_INT(c.port, 1000);
        CHECK_EQ_INT(c.max_batch_size, 8);
        CHECK_EQ_INT(c.log_level, LOG_WARN);
        CHECK(strcmp(c.host, "0.0.0.0") == 0);
        CHECK_EQ_INT(c.max_connections, 256); /* default where the file says nothing */
    }
    /* file < env */
    {
        char *argv[] = {"clipprepd", flag_config, NULL};
        char *envp[] = {"CLIPPREP_PORT=2000", "CLIPPREP_MAX_BATCH_SIZE=16",
                        "CLIPPREP_LOG_LEVEL=error", NULL};
        load_result r = load(&c, argv, envp);
        CHECK(r.ok);
        CHECK_EQ_INT(c.port, 2000);
        CHECK_EQ_INT(c.max_batch_size, 16);
        CHECK_EQ_INT(c.log_level, LOG_ERROR);
        CHECK_EQ_INT(c.queue_capacity, 7); /* still from the file */
    }
    /* file < env < flags, both flag spellings, flags before or after --config */
    {
        char *argv[] = {"clipprepd", "--port", "3000", flag_config, "--log-level=debug",
                        "--host", "::1", "--backend=cpu", NULL};
        char *envp[] = {"CLIPPREP_PORT=2000", "CLIPPREP_MAX_BATCH_SIZE=16",
                        "CLIPPREP_LOG_LEVEL=error", "CLIPPREP_BACKEND=cuda", NULL};
        load_result r = load(&c, argv, envp);
        CHECK(r.ok);
        CHECK_EQ_INT(c.port, 3000);
        CHECK_EQ_INT(c.log_level, LOG_DEBUG);
        CHECK_EQ_INT(c.backend, BACKEND_CPU);
        CHECK(strcmp(c.host, "::1") == 0);
        CHECK_EQ_INT(c.max_batch_size, 16);
        CHECK_EQ_INT(c.queue_capacity, 7);
    }
}

TEST(config_file_from_environment)
{
    const char *a = tmp_config("env_a.json", "{\"port\": 1111}");
    const char *b = tmp_config("env_b.json", "{\"port\": 2222}");
    char env_config[600], flag_config[600];
    snprintf(env_config, sizeof env_config, "CLIPPREP_CONFIG=%s", a);
    snprintf(flag_config, sizeof flag_config, "%s", b);
    cp_config c;
    {
        char *argv[] = {"clipprepd", NULL};
        char *envp[] = {env_config, NULL};
        CHECK(load(&c, argv, envp).ok);
        CHECK_EQ_INT(c.port, 1111);
    }
    {
        char *argv[] = {"clipprepd", "--config", flag_config, NULL};
        char *envp[] = {env_config, NULL};
        CHECK(load(&c, argv, envp).ok);
        CHECK_EQ_INT(c.port, 2222); /* --config wins over CLIPPREP_CONFIG */
    }
    {
        char *argv[] = {"clipprepd", "--config", "/nonexistent/clipprep.json", NULL};
        char *envp[] = {NULL};
        load_result r = load(&c, argv, envp);
        CHECK(!r.ok);
        CHECK_EQ_INT(r.err.status, CP_ERR_CONFIG);
        CHECK(msg_has(&r.err, "/nonexistent/clipprep.json"));
    }
}

TEST(unknown_key_file_env_flag_named)
{
    cp_config c;
    const char *path = tmp_config("unknown.json", "{\"port\": 1, \"max_batch\": 4}");
    char *argv1[] = {"clipprepd", "--config", (char *)path, NULL};
    char *noenv[] = {NULL};
    load_result r = load(&c, argv1, noenv);
    CHECK(!r.ok);
    CHECK_EQ_INT(r.err.status, CP_ERR_CONFIG);
    CHECK(msg_has(&r.err, "\"max_batch\""));
    CHECK(msg_has(&r.err, "unknown.json"));

    char *argv0[] = {"clipprepd", NULL};
    char *env[] = {"PATH=/bin", "CLIPPREP_MAX_BATCH=4", NULL};
    r = load(&c, argv0, env);
    CHECK(!r.ok);
    CHECK(msg_has(&r.err, "CLIPPREP_MAX_BATCH"));
    char *env_lower[] = {"CLIPPREP_port=4", NULL};
    r = load(&c, argv0, env_lower);
    CHECK(!r.ok);
    CHECK(msg_has(&r.err, "CLIPPREP_port"));

    char *argv2[] = {"clipprepd", "--max-batch-size", "4", NULL};
    r = load(&c, argv2, noenv);
    CHECK(!r.ok);
    CHECK(msg_has(&r.err, "--max-batch-size"));
    char *argv3[] = {"clipprepd", "--bogus=1", NULL};
    r = load(&c, argv3, noenv);
    CHECK(!r.ok);
    CHECK(msg_has(&r.err, "--bogus"));
    char *argv4[] = {"clipprepd", "--port", NULL};
    r = load(&c, argv4, noenv);
    CHECK(!r.ok);
    CHECK(msg_has(&r.err, "--port"));
    CHECK(msg_has(&r.err, "value"));
    char *argv5[] = {"clipprepd", "stray", NULL};
    r = load(&c, argv5, noenv);
    CHECK(!r.ok);
    CHECK(msg_has(&r.err, "stray"));

    cp_error err;
    config_defaults(&c);
    CHECK(!config_apply_string(&c, "no_such_key", "1", &err));
    CHECK(msg_has(&err, "no_such_key"));
}

TEST(help_and_version)
{
    cp_config c;
    char *noenv[] = {NULL};
    char *argv1[] = {"clipprepd", "--help", NULL};
    load_result r = load(&c, argv1, noenv);
    CHECK(r.ok && r.help && !r.version);
    char *argv2[] = {"clipprepd", "--version", NULL};
    r = load(&c, argv2, noenv);
    CHECK(r.ok && !r.help && r.version);
    /* --help returns before the (missing) file is read */
    char *argv3[] = {"clipprepd", "--config", "/nonexistent.json", "-h", NULL};
    r = load(&c, argv3, noenv);
    CHECK(r.ok && r.help);
}

TEST(type_errors_name_key_and_expectation)
{
    cp_config c;
    cp_error err;
    CHECK(!apply_json(&c, "{\"port\": \"80\"}", &err));
    CHECK(msg_has(&err, "\"port\"") && msg_has(&err, "integer") && msg_has(&err, "string"));
    CHECK(!apply_json(&c, "{\"max_batch_size\": 2.5}", &err));
    CHECK(msg_has(&err, "max_batch_size") && msg_has(&err, "integer"));
    CHECK(!apply_json(&c, "{\"host\": 5}", &err));
    CHECK(msg_has(&err, "\"host\"") && msg_has(&err, "string"));
    CHECK(!apply_json(&c, "{\"max_pixels\": true}", &err));
    CHECK(msg_has(&err, "max_pixels"));
    CHECK(!apply_json(&c, "{\"preferred_batch_sizes\": \"4,8\"}", &err));
    CHECK(msg_has(&err, "preferred_batch_sizes") && msg_has(&err, "array"));
    CHECK(!apply_json(&c, "{\"preferred_batch_sizes\": [4, \"8\"]}", &err));
    CHECK(msg_has(&err, "preferred_batch_sizes"));
    CHECK(!apply_json(&c, "{\"backend\": \"gpu\"}", &err));
    CHECK(msg_has(&err, "backend") && msg_has(&err, "gpu") && msg_has(&err, "cuda"));
    CHECK(!apply_json(&c, "{\"decode_on_gpu\": \"yes\"}", &err));
    CHECK(msg_has(&err, "decode_on_gpu") && msg_has(&err, "yes") && msg_has(&err, "\"off\""));
    CHECK(!apply_json(&c, "{\"decode_on_gpu\": true}", &err));
    CHECK(msg_has(&err, "decode_on_gpu") && msg_has(&err, "string"));
    /* "on" needs the CUDA backend: an error with backend cpu, accepted otherwise */
    config_defaults(&c);
    CHECK(!apply_json(&c, "{\"decode_on_gpu\": \"on\", \"backend\": \"cpu\"}", &err));
    CHECK(msg_has(&err, "decode_on_gpu") && msg_has(&err, "cpu"));
    config_defaults(&c);
    CHECK(apply_json(&c, "{\"decode_on_gpu\": \"on\", \"backend\": \"cuda\"}", &err));
    CHECK_EQ_INT(c.decode_on_gpu, GPU_DECODE_ON);
    config_defaults(&c);
    CHECK(apply_json(&c, "{\"decode_on_gpu\": \"off\", \"backend\": \"cpu\"}", &err));
    CHECK_EQ_INT(c.decode_on_gpu, GPU_DECODE_OFF);
    CHECK(!apply_json(&c, "{\"log_level\": \"verbose\"}", &err));
    CHECK(msg_has(&err, "log_level") && msg_has(&err, "verbose"));
    CHECK(!apply_json(&c, "{\"port\": 1, \"port\": 2}", &err));
    CHECK(msg_has(&err, "duplicate") && msg_has(&err, "port"));
    CHECK(!apply_json(&c, "[1, 2]", &err));
    CHECK(msg_has(&err, "object"));
    CHECK(!apply_json(&c, "{\n  \"port\": 1,\n  \"host\" \"x\"\n}", &err));
    CHECK(msg_has(&err, "line 3"));
    CHECK(!apply_json(&c, "{\"host\": \"\"}", &err));
    CHECK(msg_has(&err, "host") && msg_has(&err, "empty"));

    /* strings from the environment / flags */
    config_defaults(&c);
    CHECK(!config_apply_string(&c, "port", "80x", &err));
    CHECK(msg_has(&err, "port") && msg_has(&err, "80x"));
    CHECK(!config_apply_string(&c, "port", " 80", &err));
    CHECK(!config_apply_string(&c, "port", "", &err));
    CHECK(config_apply_string(&c, "port", "81", &err));
    CHECK_EQ_INT(c.port, 81);
    char *argv[] = {"clipprepd", NULL};
    char *env[] = {"CLIPPREP_HTTP_THREADS=two", NULL};
    load_result r = load(&c, argv, env);
    CHECK(!r.ok);
    CHECK(msg_has(&r.err, "CLIPPREP_HTTP_THREADS") && msg_has(&r.err, "integer"));
    char *argv2[] = {"clipprepd", "--port=http", NULL};
    char *noenv[] = {NULL};
    r = load(&c, argv2, noenv);
    CHECK(!r.ok);
    CHECK(msg_has(&r.err, "--port") && msg_has(&r.err, "http"));
}

TEST(range_errors)
{
    cp_config c;
    cp_error err;
    CHECK(apply_json(&c, "{\"port\": 0}", &err));
    CHECK(apply_json(&c, "{\"port\": 65535}", &err));
    CHECK(!apply_json(&c, "{\"port\": 65536}", &err));
    CHECK(msg_has(&err, "port") && msg_has(&err, "65535"));
    CHECK(!apply_json(&c, "{\"port\": -1}", &err));
    CHECK(!apply_json(&c, "{\"max_batch_size\": 0}", &err));
    CHECK(msg_has(&err, "max_batch_size"));
    CHECK(!apply_json(&c, "{\"http_threads\": 0}", &err));
    CHECK(!apply_json(&c, "{\"max_connections\": 0}", &err));
    CHECK(!apply_json(&c, "{\"queue_capacity\": 0}", &err));
    CHECK(!apply_json(&c, "{\"max_images_per_request\": 0}", &err));
    CHECK(!apply_json(&c, "{\"connection_timeout_s\": 0}", &err));
    CHECK(!apply_json(&c, "{\"max_pixels\": 0}", &err));
    CHECK(!apply_json(&c, "{\"max_queue_delay_us\": -1}", &err));
    CHECK(msg_has(&err, "max_queue_delay_us"));
    CHECK(apply_json(&c, "{\"max_queue_delay_us\": 2000}", &err));
    CHECK(!apply_json(&c, "{\"cpu_workers\": -1}", &err));
    CHECK(apply_json(&c, "{\"cpu_workers\": 0}", &err));
    CHECK(!apply_json(&c, "{\"max_body_bytes\": 0}", &err));
    CHECK(!apply_json(&c, "{\"staging_bytes\": \"0M\"}", &err));
    CHECK(!apply_json(&c, "{\"port\": 1e10}", &err));

    /* preferred_batch_sizes: each 1..max_batch_size, at most 16, sorted, duplicates dropped */
    CHECK(apply_json(&c, "{\"preferred_batch_sizes\": [16, 4, 8, 4], \"max_batch_size\": 16}",
                     &err));
    CHECK_EQ_INT(c.n_preferred_batch_sizes, 3);
    CHECK_EQ_INT(c.preferred_batch_sizes[0], 4);
    CHECK_EQ_INT(c.preferred_batch_sizes[2], 16);
    CHECK(!apply_json(&c, "{\"preferred_batch_sizes\": [4, 64]}", &err)); /* max 32 */
    CHECK(msg_has(&err, "preferred_batch_sizes") && msg_has(&err, "64"));
    CHECK(!apply_json(&c, "{\"preferred_batch_sizes\": [0]}", &err));
    CHECK(!apply_json(&c,
                      "{\"preferred_batch_sizes\": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]}",
                      &err));
    CHECK(msg_has(&err, "16"));
    /* a flag/env lowering max_batch_size below a preferred size from the file is caught too */
    const char *path = tmp_config("pref.json", "{\"preferred_batch_sizes\": [8, 16]}");
    char *argv[] = {"clipprepd", "--config", (char *)path, NULL};
    char *env[] = {"CLIPPREP_MAX_BATCH_SIZE=8", NULL};
    load_result r = load(&c, argv, env);
    CHECK(!r.ok);
    CHECK(msg_has(&r.err, "max_batch_size"));
    char *env2[] = {"CLIPPREP_PREFERRED_BATCH_SIZES=8, 2,4", NULL};
    r = load(&c, argv, env2);
    CHECK(r.ok);
    CHECK_EQ_INT(c.n_preferred_batch_sizes, 3);
    CHECK_EQ_INT(c.preferred_batch_sizes[0], 2);
    CHECK_EQ_INT(c.preferred_batch_sizes[1], 4);
    CHECK_EQ_INT(c.preferred_batch_sizes[2], 8);
    char *env3[] = {"CLIPPREP_PREFERRED_BATCH_SIZES=", NULL};
    r = load(&c, argv, env3);
    CHECK(r.ok);
    CHECK_EQ_INT(c.n_preferred_batch_sizes, 0);
    char *env4[] = {"CLIPPREP_PREFERRED_BATCH_SIZES=4,,8", NULL};
    r = load(&c, argv, env4);
    CHECK(!r.ok);
    CHECK(msg_has(&r.err, "CLIPPREP_PREFERRED_BATCH_SIZES"));

    /* staging_bytes must hold one largest image: 3*max_pixels + 1 MiB */
    CHECK(!apply_json(&c, "{\"max_pixels\": 200000000}", &err)); /* 600 MB > 512 MiB */
    CHECK(msg_has(&err, "staging_bytes") && msg_has(&err, "3*max_pixels") &&
          msg_has(&err, "1 MiB"));
    CHECK(apply_json(&c, "{\"max_pixels\": 1000, \"staging_bytes\": 1051576}", &err));
    CHECK(!apply_json(&c, "{\"max_pixels\": 1000, \"staging_bytes\": 1051575}", &err));
    CHECK(apply_json(&c, "{\"max_pixels\": 200000000, \"staging_bytes\": \"1GiB\"}", &err));
}

TEST(size_suffixes)
{
    cp_config c;
    cp_error err;
    static const struct {
        const char *text;
        size_t want;
    } ok_cases[] = {
        {"4096", 4096},        {"512K", 512u << 10},       {"512KiB", 512u << 10},
        {"64M", 64u << 20},    {"64MiB", 64u << 20},       {"2G", (size_t)2 << 30},
        {"2GiB", (size_t)2 << 30}, {"3 mib", (size_t)3 << 20}, {"1k", 1024},
    };
    for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
        config_defaults(&c);
        bool ok = config_apply_string(&c, "max_body_bytes", ok_cases[i].text, &err);
        CHECK(ok);
        if (!ok) fprintf(stderr, "    case %s: %s\n", ok_cases[i].text, err.message);
        CHECK_EQ_INT(c.max_body_bytes, ok_cases[i].want);
    }
    static const char *bad[] = {"12MB", "M", "-1", "1.5G", "64 M B", "0x10", "", "1T",
                                "99999999999999999999G"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        config_defaults(&c);
        bool ok = config_apply_string(&c, "staging_bytes", bad[i], &err);
        CHECK(!ok);
        if (ok) fprintf(stderr, "    accepted \"%s\"\n", bad[i]);
        else CHECK(msg_has(&err, "staging_bytes"));
    }
    /* in the file: integer or string */
    CHECK(apply_json(&c, "{\"staging_bytes\": \"1G\", \"max_body_bytes\": 1048576}", &err));
    CHECK_EQ_INT(c.staging_bytes, 1LL << 30);
    CHECK_EQ_INT(c.max_body_bytes, 1 << 20);
    CHECK(!apply_json(&c, "{\"max_body_bytes\": \"lots\"}", &err));
    CHECK(msg_has(&err, "max_body_bytes") && msg_has(&err, "MiB"));
    /* from the environment */
    char *argv[] = {"clipprepd", NULL};
    char *env[] = {"CLIPPREP_STAGING_BYTES=2GiB", "CLIPPREP_MAX_BODY_BYTES=128M", NULL};
    CHECK(load(&c, argv, env).ok);
    CHECK_EQ_INT(c.staging_bytes, 2LL << 30);
    CHECK_EQ_INT(c.max_body_bytes, 128LL << 20);
}

TEST(relative_profiles_dir)
{
    char sub[400];
    snprintf(sub, sizeof sub, "%s/sub", tmpdir);
    mkdir(sub, 0700);
    const char *path = tmp_config("sub/rel.json", "{\"profiles_dir\": \"my-profiles\"}");
    cp_config c;
    char *noenv[] = {NULL};
    char *argv[] = {"clipprepd", "--config", (char *)path, NULL};
    CHECK(load(&c, argv, noenv).ok);
    char want[600];
    snprintf(want, sizeof want, "%s/my-profiles", sub);
    CHECK(strcmp(c.profiles_dir, want) == 0);

    const char *abs_path = tmp_config("sub/abs.json", "{\"profiles_dir\": \"/opt/profiles\"}");
    char *argv2[] = {"clipprepd", "--config", (char *)abs_path, NULL};
    CHECK(load(&c, argv2, noenv).ok);
    CHECK(strcmp(c.profiles_dir, "/opt/profiles") == 0);

    /* from the environment: as given (relative to the working directory) */
    char *env[] = {"CLIPPREP_PROFILES_DIR=relative/dir", NULL};
    CHECK(load(&c, argv, env).ok);
    CHECK(strcmp(c.profiles_dir, "relative/dir") == 0);

    /* config_apply_json_text with a base directory */
    cp_error err;
    config_defaults(&c);
    CHECK(config_apply_json_text(&c, "{\"profiles_dir\": \"p\"}", "/etc/clipprep", &err));
    CHECK(strcmp(c.profiles_dir, "/etc/clipprep/p") == 0);
    CHECK(config_apply_json_text(&c, "{\"profiles_dir\": \"p\"}", ".", &err));
    CHECK(strcmp(c.profiles_dir, "p") == 0);
    CHECK(config_apply_json_text(&c, "{\"profiles_dir\": \"p\"}", "/", &err));
    CHECK(strcmp(c.profiles_dir, "/p") == 0);
}

static void check_equal_configs(const cp_config *a, const cp_config *b)
{
    CHECK(strcmp(a->host, b->host) == 0);
    CHECK_EQ_INT(a->port, b->port);
    CHECK_EQ_INT(a->http_threads, b->http_threads);
    CHECK_EQ_INT(a->max_connections, b->max_connections);
    CHECK_EQ_INT(a->connection_timeout_s, b->connection_timeout_s);
    CHECK_EQ_INT(a->drain_timeout_s, b->drain_timeout_s);
    CHECK_EQ_INT(a->backend, b->backend);
    CHECK_EQ_INT(a->decode_on_gpu, b->decode_on_gpu);
    CHECK(strcmp(a->cuda_devices, b->cuda_devices) == 0);
    CHECK(strcmp(a->cuda_sync, b->cuda_sync) == 0);
    CHECK_EQ_INT(a->cpu_workers, b->cpu_workers);
    CHECK_EQ_INT(a->max_batch_size, b->max_batch_size);
    CHECK_EQ_INT(a->max_queue_delay_us, b->max_queue_delay_us);
    CHECK_EQ_INT(a->n_preferred_batch_sizes, b->n_preferred_batch_sizes);
    for (int i = 0; i < a->n_preferred_batch_sizes && i < CP_MAX_PREFERRED_BATCH; i++)
        CHECK_EQ_INT(a->preferred_batch_sizes[i], b->preferred_batch_sizes[i]);
    CHECK_EQ_INT(a->queue_capacity, b->queue_capacity);
    CHECK_EQ_INT(a->staging_bytes, b->staging_bytes);
    CHECK_EQ_INT(a->max_body_bytes, b->max_body_bytes);
    CHECK_EQ_INT(a->max_images_per_request, b->max_images_per_request);
    CHECK_EQ_INT(a->max_pixels, b->max_pixels);
    CHECK_EQ_INT(a->max_scans, b->max_scans);
    CHECK(strcmp(a->profiles_dir, b->profiles_dir) == 0);
    CHECK(strcmp(a->default_profile, b->default_profile) == 0);
    CHECK_EQ_INT(a->log_level, b->log_level);
    CHECK_EQ_INT(a->memory_budget_bytes, b->memory_budget_bytes);
    CHECK_EQ_INT(a->max_json_output_bytes, b->max_json_output_bytes);
    CHECK_EQ_INT(a->max_request_pixels, b->max_request_pixels);
    CHECK_EQ_INT(a->max_json_body_bytes, b->max_json_body_bytes);
    CHECK_EQ_INT(a->allow_client_shm, b->allow_client_shm);
    CHECK(strcmp(a->client_shm_key_prefix, b->client_shm_key_prefix) == 0);
    CHECK_EQ_INT(a->max_connections_per_ip, b->max_connections_per_ip);
    CHECK_EQ_INT(a->header_timeout_s, b->header_timeout_s);
    CHECK_EQ_INT(a->response_timeout_s, b->response_timeout_s);
}

TEST(shipped_config_has_every_key_with_defaults)
{
    const char *path = repo_path("config/clipprep.json");
    char p[512];
    snprintf(p, sizeof p, "%s", path);
    cp_config c, d;
    char *noenv[] = {NULL};
    char *argv[] = {"clipprepd", "--config", p, NULL};
    CHECK(load(&c, argv, noenv).ok);
    config_defaults(&d);
    /* "profiles" next to the file == the default "config/profiles" seen from the repo root */
    char want_dir[600];
    snprintf(want_dir, sizeof want_dir, "%.*sprofiles", (int)(strrchr(p, '/') + 1 - p), p);
    CHECK(strcmp(c.profiles_dir, want_dir) == 0);
    snprintf(d.profiles_dir, sizeof d.profiles_dir, "%s", want_dir);
    check_equal_configs(&c, &d);

    /* the file names every key: removing any one of them is noticed via config_to_cjson */
    FILE *f = fopen(p, "r");
    CHECK(f != NULL);
    if (!f) return;
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    cJSON *file = cJSON_Parse(text);
    cJSON *all = config_to_cjson(&d);
    CHECK(file != NULL && all != NULL);
    if (file && all) {
        const cJSON *k;
        int keys = 0;
        cJSON_ArrayForEach(k, all)
        {
            keys++;
            if (!cJSON_GetObjectItemCaseSensitive(file, k->string)) {
                fprintf(stderr, "    config/clipprep.json lacks \"%s\"\n", k->string);
                CHECK(0);
            }
        }
        CHECK_EQ_INT(cJSON_GetArraySize(file), keys);
        CHECK_EQ_INT(keys, 53); /* 32 + the 9 of issue #13 + cuda_devices, cuda_sync (#15) + the 10 of #17 */
    }
    cJSON_Delete(file);
    cJSON_Delete(all);
}

TEST(default_reference_is_checked)
{
    cp_config c;
    cp_error err;
    config_defaults(&c);
    CHECK(strcmp(c.default_reference, "transformers4") == 0);
    CHECK(config_apply_string(&c, "default_reference", "open_clip", &err));
    CHECK(strcmp(c.default_reference, "open_clip") == 0);
    CHECK(!config_apply_string(&c, "default_reference", "transformers6", &err));
    CHECK(strstr(err.message, "default_reference") != NULL);
    CHECK(strstr(err.message, "transformers5-pil") != NULL);
}

TEST(to_cjson_round_trip)
{
    cp_config a, b;
    cp_error err;
    config_defaults(&a);
    CHECK(config_apply_json_text(&a,
                                 "{\"host\": \"::\", \"port\": 9, \"backend\": \"cuda\","
                                 " \"preferred_batch_sizes\": [2, 8], \"staging_bytes\": \"1G\","
                                 " \"log_level\": \"debug\", \"profiles_dir\": \"/p\"}",
                                 NULL, &err));
    cJSON *j = config_to_cjson(&a);
    CHECK(j != NULL);
    if (!j) return;
    char *text = cJSON_PrintUnformatted(j);
    config_defaults(&b);
    CHECK(config_apply_json_text(&b, text, NULL, &err));
    check_equal_configs(&a, &b);
    CHECK_EQ_INT(b.backend, BACKEND_CUDA);
    CHECK_EQ_INT(b.n_preferred_batch_sizes, 2);
    cJSON_free(text);
    cJSON_Delete(j);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/clipprep-test-config-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(defaults_are_documented_values);
    RUN(no_arguments_gives_defaults);
    RUN(precedence_file_env_flags);
    RUN(config_file_from_environment);
    RUN(unknown_key_file_env_flag_named);
    RUN(help_and_version);
    RUN(type_errors_name_key_and_expectation);
    RUN(range_errors);
    RUN(size_suffixes);
    RUN(relative_profiles_dir);
    RUN(shipped_config_has_every_key_with_defaults);
    RUN(cuda_devices_and_sync);
    RUN(to_cjson_round_trip);
    RUN(default_reference_is_checked);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return TEST_SUMMARY();
}
