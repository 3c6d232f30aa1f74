/* fuzz_config.c — libFuzzer target: the JSON config file parser, the profile parser and the
 * model-config importer (Hugging Face and open_clip readings of the same text). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../server/config.h"
#include "../../server/profile.h"
#include "../../server/profile_import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    cp_config cfg;
    config_defaults(&cfg);
    cp_error err;
    config_apply_json_text(&cfg, text, "/tmp", &err);
    profile p;
    profile_parse_json(text, &p, &err);
    profile_from_config(text, config_format_of(text), "fuzz", &p, &err);
    profile_from_config(text, CONFIG_HF, "fuzz", &p, &err);
    profile_from_config(text, CONFIG_OPEN_CLIP, "fuzz", &p, &err);
    free(text);
    return 0;
}
