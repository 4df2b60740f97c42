/* Emulated CUDA device (TEST INFRASTRUCTURE): the context switch between emulated CUDA threads
 * (x86-64 System V). Saves the callee-saved registers, MXCSR and the x87 control word on the
 * current stack, stores the stack pointer in *from, and resumes the context whose stack pointer is
 * `to`. A fresh context's stack is prepared by emu_runtime.cpp to "return" into emu_ctx_start,
 * which calls r13(r12). No signal-mask syscall, unlike swapcontext. */
    .text
    .globl emu_ctx_switch
    .type emu_ctx_switch, @function
emu_ctx_switch:              /* void emu_ctx_switch(void **from, void *to) */
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_ctx_switch, .-emu_ctx_switch

    .globl emu_ctx_start
    .type emu_ctx_start, @function
emu_ctx_start:
    movq %r12, %rdi
    xorl %ebp, %ebp
    callq *%r13
    ud2                     /* the entry function never returns */
    .size emu_ctx_start, .-emu_ctx_start
    .section .note.GNU-stack,"",@progbits
