"""7600: the official SDKs, @anthropic-ai/sdk and openai (pinned below), run inside a thread's
sandbox through janebot's LLM proxy against the fake upstream (tests/fakes/llm_upstream.py).

The SDKs come from npm through npm_pinned.py; the thread's home gets them as a user's
project would have them (proj/node_modules) with the scripts in tests/integration/clients/,
and `janebot sandbox exec THREAD -- node proj/SCRIPT CALLS...` runs them with exactly the
environment janebot gives a sandbox: the scripts set no key and no base URL. openai asks for
Node.js >= 22: when the machine's is older, a Node.js 24 from npm is the command agent
(JANEBOT_AGENT_CMD), which janebot shows read-only in the sandbox (the file alone).

The fake reports 11 uncached input, 100 cache-creation (Anthropic only), 1000 cache-read,
7 output (3 of them reasoning) tokens per answer and logs what it billed; `janebot usage
--json` must show the same per thread and model, priced by JANEBOT_PRICES. Each janebot run
has 30 s (an SDK retry waits up to 2 s).
"""
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import unittest
from pathlib import Path

import npm_pinned
from jbtest import FAKES, SYS_PATH, JanebotCase, needs_bwrap

sys.path.insert(0, str(FAKES))
from llm_upstream import FakeUpstream, header  # noqa: E402

ANTHROPIC_SDK = "@anthropic-ai/sdk@1.16.0"
OPENAI_SDK = "openai@7.60.0"
CLIENTS = Path(__file__).resolve().parent / "clients"
WAIT = 30
CLAUDE = "claude-sonnet-4-5"       # the model the Anthropic script asks for (echoed)
GPT = "gpt-5-mini"                 # the model the OpenAI script asks for
GPT_SNAPSHOT = "gpt-5-mini-2025-08-07"  # the model the fake's OpenAI answers name
USAGE = {"input": 11, "cache_write": 100, "cache_read": 1000, "output": 7, "reasoning": 3}
# USD per million tokens: IN:OUT:CACHE_WRITE:CACHE_READ; the GPT entry is a prefix and
# leaves the cache prices out (they default to IN).
PRICES = {CLAUDE: (3.0, 15.0, 3.75, 0.30), GPT + "*": (0.25, 2.0)}
PRICES_ENV = ",".join("%s=%s" % (m, ":".join("%g" % p for p in ps)) for m, ps in PRICES.items())
THREAD = "chat:sdk"
KINDS = ("input", "cache_write", "cache_read", "output", "total")


def versions_ok(where):
    mods = where / "node_modules"
    got = [json.loads((mods / name / "package.json").read_text())["version"]
           for name in ("@anthropic-ai/sdk", "openai")]
    return got == ["1.16.0", "7.60.0"]


def node_for_sdks():
    """(node binary, True when it is outside /usr and must be shown to the sandbox) or
    (None, why not)."""
    try:
        v = subprocess.run(["node", "--version"], capture_output=True, timeout=30,
                           env={"PATH": SYS_PATH}).stdout.decode().strip()
    except (OSError, subprocess.SubprocessError):
        v = ""
    m = re.match(r"v(\d+)\.", v)
    if m and int(m.group(1)) >= 22:
        return shutil.which("node", path=SYS_PATH), False
    node, reason = npm_pinned.node()
    return (node, True) if node else (None, reason)


def price_of(model):
    for pat, ps in PRICES.items():
        if model == pat or (pat.endswith("*") and model.startswith(pat[:-1])):
            inp, out = ps[0], ps[1]
            cw, cr = (ps[2], ps[3]) if len(ps) == 4 else (inp, inp)
            return inp, out, cw, cr
    return None


@needs_bwrap
class SDKsThroughProxy(JanebotCase):
    def setUp(self):
        super().setUp()
        self.sdks, reason = npm_pinned.install([ANTHROPIC_SDK, OPENAI_SDK], versions_ok)
        if reason:
            self.skipTest("the official SDKs are unavailable: " + reason)
        node, shown = node_for_sdks()
        if not node:
            self.skipTest("no Node.js >= 22 for the openai SDK: " + str(shown))
        self.node = str(node)
        if shown:
            self.env["JANEBOT_AGENT_CMD"] = self.node
        self.fake = FakeUpstream(self.tmp / "upstream.jsonl").start()
        self.addCleanup(self.fake.stop)
        self.set_fake()
        self.real = {"ANTHROPIC_API_KEY": "sk-ant-api03-REALKEY-" + secrets.token_hex(16),
                     "OPENAI_API_KEY": "sk-proj-REALKEY-" + secrets.token_hex(16)}
        self.env.update(self.real)
        self.env.update({"JANEBOT_UPSTREAM_ANTHROPIC": self.fake.url,
                         "JANEBOT_UPSTREAM_OPENAI": self.fake.url,
                         "JANEBOT_PRICES": PRICES_ENV})

    def run_jb(self, args, **kw):
        kw.setdefault("timeout", WAIT)
        r = super().run_jb(args, **kw)
        for name, v in self.real.items():
            self.assertNotIn(v, r.both, "the real %s appears in janebot's output%s" % (name, r))
        return r

    # ---- helpers ----------------------------------------------------------------------

    def set_fake(self, **extra):
        self.fake.control(answer_model={GPT: GPT_SNAPSHOT}, **USAGE, **extra)

    def put_project(self, thread=THREAD):
        """The SDKs and the scripts in THREAD's home, owned by the sandbox's user."""
        x = self.sbx(thread, "/bin/true")
        self.assertEqual(x.rc, 0, x)
        home = self.home_of(thread)
        proj = home / "proj"
        shutil.copytree(self.sdks / "node_modules", proj / "node_modules", symlinks=True,
                        ignore=shutil.ignore_patterns("*.map", "*.d.ts", "*.d.mts", "*.d.cts"))
        for f in CLIENTS.glob("*.mjs"):
            shutil.copy(f, proj / f.name)
        st = home.stat()
        for d, dirs, files in os.walk(proj):
            for n in [d] + [os.path.join(d, x) for x in dirs + files]:
                os.lchown(n, st.st_uid, st.st_gid)

    def run_sdk_lines(self, script, *calls, thread=THREAD, env=None):
        """The lines (JSON) printed for CALLS made by proj/SCRIPT in THREAD's sandbox."""
        if not (self.home_of(thread) / "proj").is_dir():
            self.put_project(thread)
        x = self.sbx(thread, self.node, "/home/agent/proj/" + script, *calls, env=env)
        lines = [json.loads(l) for l in x.out.splitlines() if l.startswith("{")]
        for name, v in self.real.items():
            self.assertNotIn(v, x.out, "the real %s reached the sandbox%s" % (name, x))
        return lines, x

    def run_sdk(self, script, *calls, **kw):
        """{call: the line it printed} for CALLS (each named once)."""
        lines, x = self.run_sdk_lines(script, *calls, **kw)
        return {l["call"]: l for l in lines}, x

    def ok(self, got, call, x):
        self.assertIn(call, got, "the script printed nothing for %s%s" % (call, x))
        self.assertTrue(got[call]["ok"], "%s failed: %s%s" % (call, got[call], x))
        return got[call]

    def assert_key_only_upstream(self, reqs, provider):
        self.assertTrue(reqs, "no request reached the upstream")
        raw = Path(self.fake.log_path).read_text()
        self.assertIsNone(re.search(r"jbt_[0-9a-f]{16}", raw), "a scoped token reached upstream")
        for g in reqs:
            if provider == "anthropic":
                self.assertEqual(header(g, "x-api-key"), [self.real["ANTHROPIC_API_KEY"]], g)
                self.assertEqual(header(g, "authorization"), [], g)
            else:
                self.assertEqual(header(g, "authorization"),
                                 ["Bearer " + self.real["OPENAI_API_KEY"]], g)
                self.assertEqual(header(g, "x-api-key"), [], g)

    def assert_sandbox_env(self, script, base_var, key_var, base):
        got, x = self.run_sdk(script, "env")
        env = self.ok(got, "env", x)["env"]
        self.assertEqual(env.get(base_var), base, x)
        self.assertRegex(env.get(key_var, ""), r"^jbt_[0-9a-f]{64}$", x)
        for name, v in self.real.items():
            self.assertNotIn(v, json.dumps(env), "the real %s is in the sandbox's env" % name)

    def usage_rows(self, since=None):
        args = ["usage", "--json"] + (["--since", since] if since else [])
        u = self.run_jb(args)
        self.assertEqual(u.rc, 0, u)
        try:
            rows = json.loads(u.out)
        except ValueError:
            self.fail("`janebot usage --json` printed no JSON array%s" % u)
        self.assertIsInstance(rows, list, u)
        return rows, u

    def assert_usage_as_billed(self, thread=THREAD):
        """`janebot usage --json` for thread, model by model (its rows summed over users),
        against what the fake billed; every request that reached the upstream counted once
        (an error or count_tokens under the model it asked for, with no tokens)."""
        billed = self.fake.billed()
        rows, u = self.usage_rows()
        mine = {}
        for r in rows:
            if r["thread"] != thread:
                continue
            m = mine.setdefault(r["model"], {"requests": 0, "cost_usd": 0.0})
            for k in KINDS:
                m[k] = m.get(k, 0) + r[k + "_tokens"]
            m["requests"] += r["requests"]
            m["cost_usd"] = None if r["cost_usd"] is None else m["cost_usd"] + r["cost_usd"]
        used = sorted(m for m, r in mine.items() if r["total"])
        self.assertEqual(used, sorted(billed),
                         "models with tokens in janebot's usage != models the upstream "
                         "answered%s" % u)
        self.assertEqual(sum(r["requests"] for r in mine.values()), len(self.fake.requests()),
                         "requests in janebot's usage != requests that reached the upstream%s"
                         % u)
        for model, b in billed.items():
            r = mine[model]
            with self.subTest(model=model):
                self.assertEqual({k: r[k] for k in KINDS}, {k: b[k] for k in KINDS},
                                 "janebot's usage of %s vs the upstream's%s" % (model, u))
                inp, out, cw, cr = price_of(model)
                cost = (b["input"] * inp + b["output"] * out + b["cache_write"] * cw
                        + b["cache_read"] * cr) / 1e6
                self.assertIsNotNone(r["cost_usd"], "%s has a price%s" % (model, u))
                self.assertAlmostEqual(r["cost_usd"], cost, places=9, msg=u)
        return mine

    # ---- the tests --------------------------------------------------------------------

    def test_7601_anthropic_sdk_messages_plain_streamed_and_count_tokens(self):
        self.assert_sandbox_env("anthropic_sdk.mjs", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY",
                                "http://127.0.0.1:4000/anthropic")
        got, x = self.run_sdk("anthropic_sdk.mjs", "plain", "stream", "count")
        # As the API does now, message_delta repeats the cumulative input and cache counts:
        # counted once all the same.
        self.set_fake(delta_usage="full")
        more, y = self.run_sdk("anthropic_sdk.mjs", "stream_helper")
        got.update(more)
        want = {"input_tokens": 11, "cache_creation_input_tokens": 100,
                "cache_read_input_tokens": 1000, "output_tokens": 7}
        plain = self.ok(got, "plain", x)
        self.assertEqual(plain["text"], "hi from fake (user messages seen: 1)", x)
        self.assertEqual({k: plain["usage"][k] for k in want}, want, x)
        self.assertEqual(plain["model"], CLAUDE)
        s = self.ok(got, "stream", x)
        self.assertEqual(s["text"], "hi from fake (user messages seen: 1)", x)
        self.assertEqual(s["types"][0], "message_start", x)
        self.assertEqual(s["types"][-1], "message_stop", x)
        self.assertEqual(s["usage_start"]["cache_read_input_tokens"], 1000, x)
        self.assertEqual(s["usage_delta"]["output_tokens"], 7, x)
        h = self.ok(got, "stream_helper", y)
        self.assertEqual(h["text"], "hi from fake (user messages seen: 1)", y)
        self.assertEqual({k: h["usage"][k] for k in want}, want, y)
        self.assertEqual(self.ok(got, "count", x)["input_tokens"], 1111, x)
        reqs = self.fake.requests()
        self.assertEqual([g["path"] for g in reqs],
                         ["/v1/messages"] * 2 + ["/v1/messages/count_tokens", "/v1/messages"],
                         reqs)
        self.assert_key_only_upstream(reqs, "anthropic")
        for g in reqs:
            self.assertEqual(len(header(g, "anthropic-version")), 1, g)
            self.assertTrue(any("Anthropic/JS 1.16.0" in v for v in header(g, "user-agent")),
                            g["headers"])
        # Three answers billed (count_tokens is free), each 11 + 100 + 1000 + 7.
        self.assertEqual(self.fake.billed()[CLAUDE]["total"], 3 * 1118)
        self.assert_usage_as_billed()

    def test_7602_openai_sdk_chat_completions_plain_and_streamed(self):
        self.assert_sandbox_env("openai_sdk.mjs", "OPENAI_BASE_URL", "OPENAI_API_KEY",
                                "http://127.0.0.1:4000/openai/v1")
        got, x = self.run_sdk("openai_sdk.mjs", "chat", "chat_stream")
        c = self.ok(got, "chat", x)
        self.assertEqual(c["text"], "hi from fake (user messages seen: 1)", x)
        self.assertEqual(c["model"], GPT_SNAPSHOT, x)
        self.assertEqual(c["usage"]["prompt_tokens"], 1011, x)
        self.assertEqual(c["usage"]["prompt_tokens_details"]["cached_tokens"], 1000, x)
        self.assertEqual(c["usage"]["completion_tokens"], 7, x)
        s = self.ok(got, "chat_stream", x)
        self.assertEqual(s["text"], "hi from fake (user messages seen: 1)", x)
        self.assertEqual(s["finish"], "stop", x)
        reqs = self.fake.requests()
        self.assertEqual([g["path"] for g in reqs], ["/v1/chat/completions"] * 2, reqs)
        self.assert_key_only_upstream(reqs, "openai")
        # The streamed call is billed whether or not the SDK asked to see its usage.
        self.assertEqual(self.fake.billed()[GPT_SNAPSHOT]["requests"], 2)
        self.assert_usage_as_billed()

    def test_7603_a_stream_without_usage_asked_reaches_the_sdk_as_asked(self):
        # janebot may ask the upstream for the usage of a streamed Chat Completion (to count
        # it), but the SDK gets the stream it asked for: every chunk has its one choice (a
        # loop reading choices[0].delta does not break) and none carries usage.
        got, x = self.run_sdk("openai_sdk.mjs", "chat_stream")
        s = self.ok(got, "chat_stream", x)
        self.assertEqual(s["text"], "hi from fake (user messages seen: 1)", x)
        self.assertEqual(s["unasked"], [], "chunks the SDK did not ask for reached it%s" % x)
        body = json.loads(self.fake.requests()[0]["body"])
        self.assertEqual(body["messages"], [{"role": "user", "content": "hello chat stream"}])

    def test_7604_openai_sdk_responses_plain_and_streamed(self):
        got, x = self.run_sdk("openai_sdk.mjs", "responses", "responses_stream")
        r = self.ok(got, "responses", x)
        self.assertEqual(r["text"], "hi from fake responses", x)
        self.assertEqual(r["status"], "completed", x)
        want = {"input_tokens": 1011, "input_tokens_details": {"cached_tokens": 1000},
                "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 3},
                "total_tokens": 1018}
        self.assertEqual(r["usage"], want, x)
        s = self.ok(got, "responses_stream", x)
        self.assertEqual(s["text"], "hi from fake responses", x)
        self.assertEqual(s["types"][0], "response.created", x)
        self.assertEqual(s["types"][-1], "response.completed", x)
        self.assertEqual(s["usage"], want, x)
        reqs = self.fake.requests()
        self.assertEqual([g["path"] for g in reqs], ["/v1/responses"] * 2, reqs)
        self.assert_key_only_upstream(reqs, "openai")
        self.assert_usage_as_billed()

    def test_7605_anthropic_sdk_retries_a_529_through_the_proxy(self):
        self.put_project()
        self.fake.fail_next(2, 529, path="/v1/messages")
        got, x = self.run_sdk("anthropic_sdk.mjs", "plain")
        p = self.ok(got, "plain", x)
        self.assertEqual(p["text"], "hi from fake (user messages seen: 1)", x)
        self.assertEqual(p["status"], 200, x)
        reqs = self.fake.requests()
        self.assertEqual(len(reqs), 3, "two refused attempts and the retry that succeeded")
        self.assertEqual([header(g, "x-stainless-retry-count") for g in reqs],
                         [["0"], ["1"], ["2"]], "the SDK's own retries")
        self.assertEqual(len({g["body_sha256"] for g in reqs}), 1, "the same body each time")
        self.assertEqual([e["status"] for e in self.fake.events("failed")], [529, 529])
        self.assert_key_only_upstream(reqs, "anthropic")
        self.assert_usage_as_billed()

    def test_7606_openai_sdk_retries_a_429_after_its_retry_after(self):
        self.put_project()
        self.fake.fail_next(2, 429, retry_after="1", path="/v1/chat/completions")
        got, x = self.run_sdk("openai_sdk.mjs", "chat")
        c = self.ok(got, "chat", x)
        self.assertEqual(c["text"], "hi from fake (user messages seen: 1)", x)
        reqs = self.fake.requests()
        self.assertEqual(len(reqs), 3, "two refused attempts and the retry that succeeded")
        self.assertEqual([header(g, "x-stainless-retry-count") for g in reqs],
                         [["0"], ["1"], ["2"]], "the SDK's own retries")
        gaps = [b["t"] - a["t"] for a, b in zip(reqs, reqs[1:])]
        for gap in gaps:
            self.assertGreater(gap, 0.9, "the SDK waited the upstream's retry-after: 1 "
                               "(passed on by the proxy): %s" % gaps)
        self.assert_key_only_upstream(reqs, "openai")
        self.assert_usage_as_billed()

    def test_7607_the_daily_cap_counts_cache_tokens(self):
        # 1118 tokens an answer: the fourth call starts with 2236 used, over the cap of 2000
        # (counting input and output alone, 36, it would go upstream).
        env = {"JANEBOT_USER_DAILY_TOKENS": "2000"}
        lines, x = self.run_sdk_lines("anthropic_sdk.mjs", "plain", "count", "stream", "plain",
                                      env=env)
        self.assertEqual([(l["call"], l["ok"]) for l in lines[:3]],
                         [("plain", True), ("count", True), ("stream", True)], x)
        self.assertEqual([g["path"] for g in self.fake.requests()],
                         ["/v1/messages", "/v1/messages/count_tokens", "/v1/messages"],
                         "only the requests within the cap go upstream%s" % x)
        if len(lines) > 3:
            self.assertFalse(lines[3]["ok"], "a call past the daily cap succeeded%s" % x)
            self.assertEqual(lines[3]["status"], 429, x)
        self.assertRegex(x.both, r"(?i)daily", "the user must learn why%s" % x)


if __name__ == "__main__":
    unittest.main()
