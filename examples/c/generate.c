/* Generates greedily from a .tern checkpoint with Tern's C API and prints the token ids (one
 * line, space-separated) and then the text.
 * Build: cc generate.c $(pkg-config --cflags --libs tern) -o generate
 * Run:   ./generate MODEL.tern "The capital of France is" 24 */
#include <stdio.h>
#include <stdlib.h>
#include <tern.h>

struct out { int32_t ids[4096]; size_t n; };

static int on_token(int32_t token, const char *piece, size_t len, void *user) {
    struct out *o = user;
    if (o->n < sizeof o->ids / sizeof o->ids[0]) o->ids[o->n++] = token;
    fwrite(piece, 1, len, stderr);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.tern PROMPT [N]\n", argv[0]);
        return 2;
    }
    tern_model_options opt;
    tern_model_options_init(&opt);
    opt.path = argv[1];
    tern_model *model = NULL;
    tern_status st = tern_model_open(&opt, &model);
    if (st != TERN_OK) {
        fprintf(stderr, "tern_model_open: %s: %s\n", tern_strerror(st), tern_last_error());
        return 1;
    }
    tern_session *session = NULL;
    if ((st = tern_session_create(model, &session)) != TERN_OK) {
        fprintf(stderr, "tern_session_create: %s\n", tern_last_error());
        return 1;
    }
    tern_sampling greedy;
    tern_sampling_init(&greedy);
    struct out o = {.n = 0};
    size_t n = 0;
    st = tern_generate(session, argv[2], argc > 3 ? (size_t)atoi(argv[3]) : 24, &greedy, on_token, &o, &n);
    if (st != TERN_OK) {
        fprintf(stderr, "tern_generate: %s: %s\n", tern_strerror(st), tern_last_error());
        return 1;
    }
    for (size_t i = 0; i < o.n; i++) printf(i ? " %d" : "%d", o.ids[i]);
    printf("\n");
    tern_session_free(session);
    tern_model_close(model);
    return 0;
}
