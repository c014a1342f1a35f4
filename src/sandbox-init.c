/* src/sandbox-init.c -- main() of janebot's sandbox init as its own small, statically
 * linked program: the first process inside every local sandbox (sandbox/init.c), which
 * hands its proxy listeners to the host (proxy.h's proxy_hand_over), nothing else.
 * janebot's own binary loads about 48 shared libraries before main() (about 10 ms on
 * every exec); this starts in about 1 ms. The build embeds it in janebot
 * (sandbox/init-elf.S), which writes it to its run dir once per binary (rundir.c) for
 * sandboxes to run at /run/janebot/janebot. */
#include <stdio.h>
#include <string.h>

#include "proxy/proxy.h"
#include "sandbox/sandbox.h"

int main(int argc, char **argv)
{
    /* The command line is janebot's own: `janebot sandbox-init ...`. */
    if (argc < 2 || strcmp(argv[1], "sandbox-init") != 0) {
        fprintf(stderr, "janebot's sandbox init: not for people (run inside a sandbox)\n");
        return 2;
    }
    sandbox_init_main(argc - 1, argv + 1, proxy_hand_over);
}
