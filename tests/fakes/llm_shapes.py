"""tests/fakes/llm_shapes.py -- the bodies the fake LLM upstream (llm_upstream.py) answers,
in the shapes of the providers' public API references: error bodies, and the usage objects
of Anthropic Messages, OpenAI Chat Completions and OpenAI Responses for a set of usage
switches (see llm_upstream.py)."""
import json

USAGE_DEFAULTS = {"input": 10, "output": 5, "cache_write": 0, "cache_read": 0, "reasoning": 0}


def provider_of(path):
    p = path.split("?", 1)[0]
    if p.startswith("/api/"):
        return "amp"
    if p.startswith("/v1/messages"):
        return "anthropic"
    if p.startswith("/v1/"):
        return "openai"
    return "anthropic"


def error_body(provider, status, message):
    if provider == "openai":
        typ = {401: "invalid_request_error", 404: "invalid_request_error",
               429: "requests", 500: "server_error"}.get(status, "api_error")
        code = {429: "rate_limit_exceeded"}.get(status)
        return {"error": {"message": message, "type": typ, "param": None, "code": code}}
    typ = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
           404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
           500: "api_error", 529: "overloaded_error"}.get(status, "api_error")
    return {"type": "error", "error": {"type": typ, "message": message}}


def usage_knobs(opts):
    u = {k: int(opts.get(k, v)) for k, v in USAGE_DEFAULTS.items()}
    u["reasoning"] = min(u["reasoning"], u["output"])
    return u


def anthropic_usage(u):
    return {"input_tokens": u["input"], "cache_creation_input_tokens": u["cache_write"],
            "cache_read_input_tokens": u["cache_read"], "output_tokens": u["output"],
            "cache_creation": {"ephemeral_5m_input_tokens": u["cache_write"],
                               "ephemeral_1h_input_tokens": 0},
            "service_tier": "standard"}


def chat_usage(u):
    prompt = u["input"] + u["cache_read"]
    return {"prompt_tokens": prompt, "completion_tokens": u["output"],
            "total_tokens": prompt + u["output"],
            "prompt_tokens_details": {"cached_tokens": u["cache_read"], "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": u["reasoning"], "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0}}


def responses_usage(u):
    inp = u["input"] + u["cache_read"]
    return {"input_tokens": inp, "input_tokens_details": {"cached_tokens": u["cache_read"]},
            "output_tokens": u["output"],
            "output_tokens_details": {"reasoning_tokens": u["reasoning"]},
            "total_tokens": inp + u["output"]}


def billed(u, api):
    cw = u["cache_write"] if api == "anthropic" else 0  # OpenAI reports no cache writes
    b = {"input": u["input"], "cache_write": cw, "cache_read": u["cache_read"],
         "output": u["output"], "reasoning": u["reasoning"]}
    b["total"] = b["input"] + b["cache_write"] + b["cache_read"] + b["output"]
    return b


def answered_model(opts, req, default):
    """The model an answer names: the request's, or answer_model's (a name, or a mapping
    from the requested name)."""
    asked = req.get("model") or default
    answer = opts.get("answer_model")
    if isinstance(answer, dict):
        return answer.get(asked) or asked
    return answer or asked


def sse(name, obj):
    data = "data: %s\n\n" % json.dumps(obj, separators=(",", ":"))
    return "event: %s\n%s" % (name, data) if name else data
