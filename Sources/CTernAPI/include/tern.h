/*
 * tern.h - C API of Tern, an on-device LLM inference runtime (C11).
 *
 * Shape: open a model (shared, read-only weights), create one or more sessions over it (each
 * with its own KV cache), tokenize / detokenize, and generate with a per-token callback.
 *
 * Errors: every function that can fail returns a tern_status (TERN_OK = 0). The message of the
 * last failure on the calling thread is tern_last_error(); tern_strerror() names a status.
 * No function aborts the host process on bad input: NULL pointers, invalid paths, corrupt
 * files, a budget too small, a buffer too small and closing a handle twice (when detectable)
 * all return errors.
 *
 * Threads: a tern_model may be shared by sessions on different threads at once (weights are
 * read-only; each session owns its cache and worker threads). One session must not be used by
 * two threads at once, except tern_cancel(), which may be called from any thread.
 *
 * Link: cc app.c $(pkg-config --cflags --libs tern)
 */
#ifndef TERN_H
#define TERN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Version of this header's API; tern_api_version() returns the library's. */
#define TERN_API_VERSION 2

/** Status codes. */
typedef enum tern_status {
    TERN_OK = 0,
    TERN_ERR_INVALID_ARGUMENT = 1, /**< NULL or out-of-range argument, unknown or closed handle */
    TERN_ERR_IO = 2,               /**< the file could not be opened or read */
    TERN_ERR_FORMAT = 3,           /**< the file is not a valid .tern checkpoint (or is a GGUF) */
    TERN_ERR_BUDGET = 4,           /**< mem_budget_bytes is below what the model needs */
    TERN_ERR_BUFFER_TOO_SMALL = 5, /**< the output buffer is too small; the needed size was returned */
    TERN_ERR_CONTEXT_FULL = 6,     /**< the session has no room for the prompt and tokens asked for */
    TERN_ERR_CANCELLED = 7,        /**< tern_cancel() stopped the generation */
    TERN_ERR_INTERNAL = 8,         /**< anything else (see tern_last_error()) */
    TERN_ERR_TEMPLATE = 9          /**< the chat template failed: unsupported construct, raise_exception, limits (API 2) */
} tern_status;

/** An open model: weights and tokenizer, shared by sessions. Opaque. */
typedef struct tern_model tern_model;
/** A sequence over a model: KV cache, sampler state, worker threads. Opaque. */
typedef struct tern_session tern_session;

/**
 * Self-speculative decoding: drafts from the model's own weights or the context, verified in
 * batches. Greedy output is identical to plain decoding; sampled output has the same
 * distribution. Under mem_budget_bytes, speculation gets only what the plan sets aside.
 */
typedef enum tern_speculation {
    TERN_SPECULATE_OFF = 0,    /**< plain decoding */
    TERN_SPECULATE_AUTO = 1,   /**< the settings `tern calibrate` stored in the checkpoint; lookup until then */
    TERN_SPECULATE_LOOKUP = 2  /**< n-gram lookup drafts from the context only */
} tern_speculation;

/** Options for tern_model_open(); initialize with tern_model_options_init(). */
typedef struct tern_model_options {
    size_t struct_size;        /**< sizeof(tern_model_options), set by init */
    const char *path;          /**< the .tern checkpoint (required) */
    int32_t threads;           /**< worker threads per session; 0 = physical cores; capped to the CPUs available */
    uint64_t mem_budget_bytes; /**< peak resident memory to stay within; 0 = no limit */
    uint32_t context;          /**< positions a session may reach; 0 = 4096 (or the model's, if smaller) */
    int32_t speculation;       /**< a tern_speculation; default TERN_SPECULATE_AUTO */
} tern_model_options;

/** Sampling parameters; initialize with tern_sampling_init() (greedy). */
typedef struct tern_sampling {
    float temperature; /**< 0 = greedy (argmax) */
    int32_t top_k;     /**< keep the k most likely tokens; 0 = all */
    float top_p;       /**< nucleus threshold in (0, 1]; 1 = off */
    uint64_t seed;     /**< random seed */
} tern_sampling;

/**
 * Called for each generated token with its id and the text it completes (UTF-8, possibly
 * empty while a multi-byte character is incomplete; not NUL-terminated). Return non-zero to stop.
 */
typedef int (*tern_token_callback)(int32_t token, const char *piece, size_t piece_len, void *user_data);

/** Library version string, e.g. "0.1.0". Never NULL; static storage. */
const char *tern_version(void);
/** API version of the library (compare with TERN_API_VERSION). */
int tern_api_version(void);
/** A short description of a status code. Never NULL; static storage. */
const char *tern_strerror(int status);
/** The message of the last failure on this thread ("" if none). Valid until the next call on this thread. */
const char *tern_last_error(void);

/** Fills `options` with defaults (path NULL, all else 0). */
void tern_model_options_init(tern_model_options *options);
/** Fills `sampling` with greedy defaults (temperature 0, top_k 40, top_p 1, seed 0). */
void tern_sampling_init(tern_sampling *sampling);

/** Opens a model. On success *out_model is set; release it with tern_model_close(). */
tern_status tern_model_open(const tern_model_options *options, tern_model **out_model);
/**
 * Closes a model handle. Sessions keep what they use alive until they are freed. Closing NULL is
 * TERN_OK; closing a handle that is not open (already closed, or never returned by
 * tern_model_open) returns TERN_ERR_INVALID_ARGUMENT.
 */
tern_status tern_model_close(tern_model *model);

/**
 * Tokenizes `len` bytes of UTF-8 `text` (add_special: BOS/EOS as the vocabulary asks). Writes up
 * to `capacity` ids to `tokens` and the count to *n_tokens; when `capacity` is too small, returns
 * TERN_ERR_BUFFER_TOO_SMALL with the needed count in *n_tokens (tokens may be NULL to ask).
 */
tern_status tern_tokenize(tern_model *model, const char *text, size_t len, int add_special,
                          int32_t *tokens, size_t capacity, size_t *n_tokens);
/**
 * Writes the text of `n` token ids to `buf` (UTF-8, NUL-terminated) and its length (without the
 * NUL) to *len; when `capacity` is too small, returns TERN_ERR_BUFFER_TOO_SMALL with the needed
 * length in *len (buf may be NULL to ask). Ids outside the vocabulary are TERN_ERR_INVALID_ARGUMENT.
 */
tern_status tern_detokenize(tern_model *model, const int32_t *tokens, size_t n, char *buf, size_t capacity, size_t *len);

/** Creates a session over `model` (its cache sized by the model's context). */
tern_status tern_session_create(tern_model *model, tern_session **out_session);
/** Forgets the session's conversation (the cache is kept, not reallocated). */
tern_status tern_session_reset(tern_session *session);
/** Frees a session; NULL is TERN_OK; a handle that is not live returns TERN_ERR_INVALID_ARGUMENT. */
tern_status tern_session_free(tern_session *session);

/**
 * Appends `prompt` (UTF-8, NUL-terminated; BOS added at the start of a session) to the session
 * and generates up to `max_tokens` tokens after it, calling `callback` (may be NULL) for each.
 * Stops at end of sequence, when the callback returns non-zero, or on tern_cancel(). The number
 * of generated tokens goes to *n_generated (may be NULL). Later calls continue the sequence.
 * If the prompt fails (e.g. a read error of streamed weights), none of it stays in the session:
 * the session is as before the call, or, where a sliding-window layer's cache has already reused
 * slots the earlier positions need (a prompt longer than one batch), reset as by
 * tern_session_reset(). An error
 * while generating keeps the tokens handed out so far.
 */
tern_status tern_generate(tern_session *session, const char *prompt, size_t max_tokens, const tern_sampling *sampling,
                          tern_token_callback callback, void *user_data, size_t *n_generated);
/** Asks a running tern_generate() or tern_chat() on `session` to stop (from any thread); it returns TERN_ERR_CANCELLED. */
tern_status tern_cancel(tern_session *session);

/** One chat message (UTF-8, NUL-terminated): role "system", "user", "assistant" (or any the template knows). */
typedef struct tern_chat_message {
    const char *role;
    const char *content;
} tern_chat_message;

/**
 * Renders `n` messages with a chat template into `buf` (UTF-8, NUL-terminated), its length (without
 * the NUL) to *len; a too-small `capacity` returns TERN_ERR_BUFFER_TOO_SMALL with the needed length
 * in *len (buf may be NULL to ask). `template_source` is a Jinja template, or NULL for the model's
 * own (its tokenizer.chat_template, else its family's default). `add_generation_prompt` non-zero
 * ends with the assistant's turn opening. A template error is TERN_ERR_TEMPLATE (API 2).
 */
tern_status tern_chat_apply_template(tern_model *model, const char *template_source, const tern_chat_message *messages, size_t n,
                                     int add_generation_prompt, char *buf, size_t capacity, size_t *len);

/**
 * Adds a user message to the session's conversation and generates the reply in the model's chat
 * format, as tern_generate() does (callback, sampling, *n_generated, tern_cancel()). The first
 * call may pass a system message (`system`, else NULL). The KV cache keeps the conversation: each
 * call prefills only the new turn's tokens. The reply ends on the model's end-of-generation tokens
 * and joins the history; tern_session_reset() forgets it. Use a session for tern_chat() or for
 * tern_generate(), not both (API 2).
 */
tern_status tern_chat(tern_session *session, const char *system, const char *user_message, size_t max_tokens,
                      const tern_sampling *sampling, tern_token_callback callback, void *user_data, size_t *n_generated);

#ifdef __cplusplus
}
#endif
#endif /* TERN_H */
