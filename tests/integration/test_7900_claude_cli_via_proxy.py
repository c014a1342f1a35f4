"""7900: the real Claude Code CLI in a sandbox, through janebot's LLM proxy, against the fake
upstream (tests/fakes/llm_upstream.py): one prompt and one resume, a tool round trip, and
the cache tokens it is billed for counted and priced as Claude Code prices them.

The CLI comes from npm (@anthropic-ai/claude-code, pinned below) through npm_pinned.py,
reused while its `claude --version` works; the test skips, saying why, only when it cannot
be installed. Each janebot run has 20 s.
"""
import json
import os
import re
import secrets
import subprocess
import sys
import unittest
from pathlib import Path

import npm_pinned
from jbtest import FAKES, SYS_PATH, JanebotCase, needs_bwrap

sys.path.insert(0, str(FAKES))
from llm_upstream import FakeUpstream, header  # noqa: E402

VERSION = "2.1.332"
PACKAGE = "@anthropic-ai/claude-code@" + VERSION


def claude_works(where):
    p = subprocess.run([str(where / "node_modules" / ".bin" / "claude"), "--version"],
                       capture_output=True, timeout=30, stdin=subprocess.DEVNULL,
                       env={"PATH": SYS_PATH, "HOME": "/tmp"})
    return p.returncode == 0 and VERSION in p.stdout.decode(errors="replace")


PREFIX = npm_pinned.prefix([PACKAGE])
CLAUDE = PREFIX / "node_modules" / ".bin" / "claude"
# The model Claude Code 2.1.332 asks for by default, and what it charges for it, in USD per
# million tokens (input, output, cache write, cache read): read from its own result line
# (modelUsage.costUSD) for answers reporting 1M tokens of one kind each.
CC_MODEL = "claude-opus-5-5"
CC_PRICES = "%s=4:20:5:0.2" % CC_MODEL
# What the fake reports per answer in the cache tests (Claude Code's real requests come back
# mostly as cache reads and writes).
CACHE_USAGE = {"input": 11, "cache_write": 100, "cache_read": 1000, "output": 7}


def install_claude():
    """None when CLAUDE works (installing it if needed), else why not."""
    return npm_pinned.install([PACKAGE], claude_works)[1]


def claude_fixture(case):
    """For a test case: skips unless the real CLI works; else starts the fake upstream
    (stopped at cleanup) and returns (fake, real key, the environment janebot runs claude
    with against it, through the proxy and with nothing real reachable)."""
    reason = install_claude()
    if reason:
        case.skipTest("real Claude Code CLI unavailable: " + reason)
    fake = FakeUpstream(case.tmp / "upstream.jsonl").start()
    case.addCleanup(fake.stop)
    real_key = "sk-ant-api03-REALKEY-" + secrets.token_hex(16)
    return fake, real_key, {
        "JANEBOT_AGENT": "claude",
        "JANEBOT_AGENT_BIN": str(CLAUDE),
        "ANTHROPIC_API_KEY": real_key,
        "JANEBOT_UPSTREAM_ANTHROPIC": fake.url,
        # Nothing real is reachable: if the proxy is bypassed the CLI gets nowhere.
        "JANEBOT_EGRESS_ALLOW": "egress-blocked.invalid",
    }


@needs_bwrap
class ClaudeThroughProxy(JanebotCase):
    def setUp(self):
        super().setUp()
        self.fake, self.real_key, env = claude_fixture(self)
        self.env.update(env)

    def run_jb(self, args, **kw):
        kw.setdefault("timeout", 20)
        r = super().run_jb(args, **kw)
        self.assertNotIn(self.real_key, r.both, "the real key appears in janebot's output%s" % r)
        return r

    def test_7901_claude_prompt_and_resume_through_the_proxy(self):
        # Fail fast (not after the CLI's minutes of retries) when there is no proxy.
        x = self.sbx("chat:cc", "/usr/bin/env")
        env = dict(l.split("=", 1) for l in x.out.splitlines() if "=" in l)
        self.assertEqual(env.get("ANTHROPIC_BASE_URL"), "http://127.0.0.1:4000/anthropic",
                         "the sandbox has no ANTHROPIC_BASE_URL for the LLM proxy%s" % x)
        self.assertRegex(env.get("ANTHROPIC_API_KEY", ""), r"^jbt_[0-9a-f]{64}$", x)

        r1 = self.chat_ok(["say hi"], thread="cc")
        self.assertIn_("hi from fake (user messages seen: 1)", r1)
        r2 = self.chat_ok(["and again"], thread="cc")
        self.assertIn_("hi from fake (user messages seen: 2)", r2)

        got = self.fake.requests()
        msgs = [g for g in got if g["path"].split("?")[0] == "/v1/messages"]
        others = [(g["method"], g["path"]) for g in got if g not in msgs]
        self.assertEqual(others, [], "requests other than /v1/messages reached the upstream")
        self.assertGreaterEqual(len(msgs), 2, "two model calls expected: %s"
                                % [g["path"] for g in got])
        raw = Path(self.fake.log_path).read_text()
        self.assertIsNone(re.search(r"jbt_[0-9a-f]{16}", raw), "a scoped token reached upstream")
        for g in msgs:
            with self.subTest(id=g["id"]):
                self.assertEqual(header(g, "x-api-key"), [self.real_key])
                self.assertEqual(header(g, "authorization"), [])
                self.assertTrue(header(g, "anthropic-beta"), "anthropic-beta not passed on")
                self.assertTrue(any("claude-cli/" + VERSION in v
                                    for v in header(g, "user-agent")), g["headers"])
        last = json.loads(msgs[-1]["body"])
        text = json.dumps(last["messages"])
        for needle in ("say hi", "hi from fake (user messages seen: 1)", "and again"):
            self.assertIn(needle, text, "the resumed request must carry the history")
        self.assertEqual(len({g["body_sha256"] for g in msgs}), len(msgs))


    def last_model_calls(self, since):
        return [g for g in self.fake.requests()[since:]
                if g["path"].split("?")[0] == "/v1/messages"]

    def assert_key_only_upstream(self, reqs):
        raw = Path(self.fake.log_path).read_text()
        self.assertIsNone(re.search(r"jbt_[0-9a-f]{16}", raw), "a scoped token reached upstream")
        for g in reqs:
            self.assertEqual(header(g, "x-api-key"), [self.real_key], g["headers"])
            self.assertEqual(header(g, "authorization"), [], g["headers"])

    def test_7902_a_tool_call_runs_in_the_sandbox_and_its_file_lands_in_the_home(self):
        self.fake.control(tool_command='echo tool-was-here > "$HOME/made-by-tool.txt" '
                                       '&& echo wrote-it')
        r = self.chat_ok(["USE_TOOL please"], thread="tool")
        self.assertIn_("done", r)
        made = self.home_of("chat:tool") / "made-by-tool.txt"
        self.assertTrue(made.is_file(), "the tool's file is not in the thread's home%s" % r)
        self.assertEqual(made.read_text(), "tool-was-here\n")
        x = self.sbx("chat:tool", "/bin/cat", "/home/agent/made-by-tool.txt")
        self.assertEqual((x.rc, x.out), (0, "tool-was-here\n"), x)
        calls = self.last_model_calls(0)
        self.assertEqual(len(calls), 2, "a tool_use answer, then the tool's result upstream")
        msgs = json.loads(calls[1]["body"])["messages"]
        uses = [b for b in msgs[-2]["content"] if isinstance(b, dict)
                and b.get("type") == "tool_use"]
        self.assertEqual([(u["name"], u["input"]["command"]) for u in uses],
                         [("Bash", 'echo tool-was-here > "$HOME/made-by-tool.txt" '
                                   '&& echo wrote-it')], msgs[-2])
        results = [b for b in msgs[-1]["content"] if isinstance(b, dict)
                   and b.get("type") == "tool_result"]
        self.assertEqual(len(results), 1, msgs[-1])
        self.assertEqual(results[0]["tool_use_id"], uses[0]["id"], results)
        self.assertIn("wrote-it", json.dumps(results[0].get("content")), results)
        self.assertFalse(results[0].get("is_error"), results)
        self.assert_key_only_upstream(calls)

    def claude_in_sandbox(self, thread, prompt):
        """Claude Code's result line for one run by `janebot sandbox exec` (the agent's
        environment, its package shown read-only where it is installed)."""
        x = self.sbx(thread, os.path.realpath(CLAUDE), "-p", prompt, "--output-format",
                     "stream-json", "--verbose", timeout=30)
        results = [json.loads(l) for l in x.out.splitlines()
                   if l.startswith("{") and json.loads(l).get("type") == "result"]
        self.assertTrue(results, "no result line from Claude Code%s" % x)
        self.assertFalse(results[-1].get("is_error"), x)
        return results[-1]

    def test_7903_cache_tokens_are_counted_and_priced_as_claude_code_prices_them(self):
        self.fake.control(tool_command="echo fine", **CACHE_USAGE)
        env = {"JANEBOT_PRICES": CC_PRICES}
        self.chat_ok(["say hi"], thread="cost", env=env)
        self.chat_ok(["USE_TOOL please"], thread="cost", env=env)
        before = len(self.fake.requests())
        res = self.claude_in_sandbox("chat:cost", "one more")
        runs = len(self.last_model_calls(before))
        # Claude Code's own view of the run: the model and what it cost.
        self.assertEqual(list(res["modelUsage"]), [CC_MODEL], res["modelUsage"])
        mu = res["modelUsage"][CC_MODEL]
        self.assertEqual((mu["inputTokens"], mu["cacheCreationInputTokens"],
                          mu["cacheReadInputTokens"], mu["outputTokens"]),
                         (11 * runs, 100 * runs, 1000 * runs, 7 * runs), mu)
        per_call = res["total_cost_usd"] / runs

        billed = self.fake.billed()
        self.assertEqual(list(billed), [CC_MODEL], billed)
        b = billed[CC_MODEL]
        self.assertEqual(b["requests"], len(self.last_model_calls(0)))
        self.assertGreaterEqual(b["requests"], 4, "say hi, a tool round trip, one more")
        u = self.run_jb(["usage", "--json"], env=env)
        self.assertEqual(u.rc, 0, u)
        rows = [r for r in json.loads(u.out) if r["thread"] == "chat:cost"]
        self.assertEqual({r["model"] for r in rows}, {CC_MODEL}, u)
        # A row per user: the turns' and `sandbox exec`'s.
        got = {k: sum(r[k] for r in rows) for k in (
            "requests", "input_tokens", "cache_write_tokens", "cache_read_tokens",
            "output_tokens", "total_tokens")}
        self.assertEqual(got, {"requests": b["requests"], "input_tokens": b["input"],
                               "cache_write_tokens": b["cache_write"],
                               "cache_read_tokens": b["cache_read"],
                               "output_tokens": b["output"], "total_tokens": b["total"]},
                         "janebot's count vs what the upstream billed%s" % u)
        self.assertNotIn(None, [r["cost_usd"] for r in rows], u)
        self.assertAlmostEqual(sum(r["cost_usd"] for r in rows), per_call * b["requests"],
                               places=9, msg="janebot's cost vs Claude Code's own (%s per "
                               "call)%s" % (per_call, u))
        self.assert_key_only_upstream(self.last_model_calls(0))


if __name__ == "__main__":
    unittest.main()
