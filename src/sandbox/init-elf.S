/* sandbox/init-elf.S -- the static sandbox init program (src/sandbox-init.c, built by the
 * Makefile as $(B)/janebot-init) embedded in janebot: rundir.c writes these bytes to the
 * run dir, once per janebot binary, for sandboxes to run. */
    .section .rodata
    .balign 16
    .global sandbox_init_elf
    .global sandbox_init_elf_size
sandbox_init_elf:
    .incbin INIT_ELF
sandbox_init_elf_end:
    .balign 8
sandbox_init_elf_size:
    .quad sandbox_init_elf_end - sandbox_init_elf
    .section .note.GNU-stack,"",@progbits
