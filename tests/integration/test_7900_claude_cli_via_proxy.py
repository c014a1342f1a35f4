"""7900: the real Claude Code CLI in a sandbox, through janebot's LLM proxy, against the fake
upstream (tests/fakes/llm_upstream.py): one prompt and one resume.

The CLI comes from npm (@anthropic-ai/claude-code, pinned below) through npm_pinned.py,
reused while its `claude --version` works; the test skips, saying why, only when it cannot
be installed. Each janebot run has 20 s.
"""
import json
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


def install_claude():
    """None when CLAUDE works (installing it if needed), else why not."""
    return npm_pinned.install([PACKAGE], claude_works)[1]


@needs_bwrap
class ClaudeThroughProxy(JanebotCase):
    def setUp(self):
        super().setUp()
        reason = install_claude()
        if reason:
            self.skipTest("real Claude Code CLI unavailable: " + reason)
        self.fake = FakeUpstream(self.tmp / "upstream.jsonl").start()
        self.addCleanup(self.fake.stop)
        self.real_key = "sk-ant-api03-REALKEY-" + secrets.token_hex(16)
        self.env.update({
            "JANEBOT_AGENT": "claude",
            "JANEBOT_AGENT_BIN": str(CLAUDE),
            "ANTHROPIC_API_KEY": self.real_key,
            "JANEBOT_UPSTREAM_ANTHROPIC": self.fake.url,
            # Nothing real is reachable: if the proxy is bypassed the CLI gets nowhere.
            "JANEBOT_EGRESS_ALLOW": "egress-blocked.invalid",
        })

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


if __name__ == "__main__":
    unittest.main()
