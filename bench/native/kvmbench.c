/*
 * The C reference of 'jhv bench': the same guest (src/main/guest/bench.S) and the same work as
 * the Java benchmarks, with raw KVM ioctls and nothing else.
 *
 *   kvmbench IMAGE TEST COUNT [SYMBOL=VALUE...]
 *
 * TEST is out16 (OUT exits, real mode), mmio3 (MMIO exits, long-mode ring 3), create (VM, 2 MiB of
 * memory and a vCPU set up as a careful VMM does, with the CPUID table, the power-on FP state, the
 * run-time signal mask and the MSR-exit capabilities, up to the first exit), map1g (make a 1 GiB slot,
 * make it read-only, writable again, remove it: "map_ns", "protect_ns", "unmap_ns"), kick (another
 * thread signals the vCPU thread running ring-3 code, COUNT times: the median time from the signal to
 * KVM_RUN returning), hello (what `jhv run --mode REAL` does for bench.S's hello16: boot it, print
 * its line, exit with its status; run it as a process to time a cold start), or compute (COUNT iterations of dec/jnz in ring 3,
 * and the same loop on the host). Prints "ns_per_op VALUE", and for compute "host_ns_per_op VALUE".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define RAM (2u << 20)
#define CHECK(x) do { if ((long)(x) < 0) { perror(#x); exit(1); } } while (0)

static unsigned char image[RAM];
static size_t image_size;
static uint64_t symbols[16];
static const char *symbol_names[] = {"out_loop16", "mmio_loop", "count_loop", "PML4", "gdt", "gdt_end", "tss",
                                     "tss_end", "USER_STACK_TOP", "hello16", NULL};

static uint64_t sym(const char *name) {
    for (int i = 0; symbol_names[i]; i++)
        if (!strcmp(symbol_names[i], name)) return symbols[i];
    fprintf(stderr, "missing symbol %s\n", name);
    exit(2);
}

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + t.tv_nsec;
}

struct machine {
    int vm, vcpu;
    struct kvm_run *run;
    void *ram;
    int run_size;
};

static void machine_create(int kvm, struct machine *m) {
    m->vm = ioctl(kvm, KVM_CREATE_VM, 0);
    CHECK(m->vm);
    m->ram = mmap(NULL, RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m->ram == MAP_FAILED) { perror("mmap"); exit(1); }
    memcpy(m->ram, image, image_size);
    struct kvm_userspace_memory_region region = {.slot = 0, .guest_phys_addr = 0, .memory_size = RAM,
                                                 .userspace_addr = (uint64_t)m->ram};
    CHECK(ioctl(m->vm, KVM_SET_USER_MEMORY_REGION, &region));
    m->vcpu = ioctl(m->vm, KVM_CREATE_VCPU, 0);
    CHECK(m->vcpu);
    m->run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    m->run = mmap(NULL, m->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, m->vcpu, 0);
    if (m->run == MAP_FAILED) { perror("mmap run"); exit(1); }
}

static struct kvm_cpuid2 *supported_cpuid;

/*
 * What jhv does for every VM and vCPU beyond the bare minimum, so that the comparison is fair:
 * the CPUID table, the power-on FP state, a run-time signal mask (what makes kicks possible; KVM
 * swaps masks around every KVM_RUN), registers synchronised through kvm_run at every exit, and
 * the MSR-exit and emulation-failure capabilities.
 */
static void careful_setup(int kvm, struct machine *m) {
    struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_USER_SPACE_MSR, .args = {KVM_MSR_EXIT_REASON_UNKNOWN | KVM_MSR_EXIT_REASON_FILTER}};
    CHECK(ioctl(m->vm, KVM_ENABLE_CAP, &cap));
    struct kvm_enable_cap emulation = {.cap = KVM_CAP_EXIT_ON_EMULATION_FAILURE, .args = {1}};
    CHECK(ioctl(m->vm, KVM_ENABLE_CAP, &emulation));
    if (!supported_cpuid) {
        supported_cpuid = calloc(1, sizeof *supported_cpuid + 256 * sizeof(struct kvm_cpuid_entry2));
        supported_cpuid->nent = 256;
        CHECK(ioctl(kvm, KVM_GET_SUPPORTED_CPUID, supported_cpuid));
    }
    CHECK(ioctl(m->vcpu, KVM_SET_CPUID2, supported_cpuid));
    static struct kvm_xsave xsave;
    CHECK(ioctl(m->vcpu, KVM_GET_XSAVE, &xsave));
    xsave.region[6] = 0x1f80;                  /* MXCSR */
    xsave.region[128] |= 3;                    /* XSTATE_BV: x87, SSE */
    CHECK(ioctl(m->vcpu, KVM_SET_XSAVE, &xsave));
    struct { struct kvm_signal_mask mask; uint64_t set; } mask = {.mask = {.len = 8}, .set = 0};
    CHECK(ioctl(m->vcpu, KVM_SET_SIGNAL_MASK, &mask));
    m->run->kvm_valid_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS;
}

static volatile uint64_t kick_sent;
static pthread_t vcpu_thread;

static void *kicker(void *count) {
    for (long i = 0; i < (long)count; i++) {
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
        kick_sent = now_ns();
        pthread_kill(vcpu_thread, SIGRTMIN + 3);
    }
    return NULL;
}

static int compare(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void machine_destroy(struct machine *m) {
    munmap(m->run, m->run_size);
    close(m->vcpu);
    close(m->vm);
    munmap(m->ram, RAM);
}

static void real_mode(struct machine *m, uint64_t rip) {
    struct kvm_sregs s;
    CHECK(ioctl(m->vcpu, KVM_GET_SREGS, &s));
    s.cs.selector = 0;
    s.cs.base = 0;
    struct kvm_regs r = {.rip = rip, .rflags = 2};
    CHECK(ioctl(m->vcpu, KVM_SET_SREGS, &s));
    CHECK(ioctl(m->vcpu, KVM_SET_REGS, &r));
}

static void segment(struct kvm_segment *s, uint16_t selector, int code, int dpl) {
    memset(s, 0, sizeof *s);
    s->selector = selector; s->limit = 0xffffffff; s->type = code ? 0xb : 0x3; s->present = 1; s->dpl = dpl;
    s->s = 1; s->g = 1; s->l = code; s->db = !code;
}

static void ring3(struct machine *m, uint64_t rip) {
    struct kvm_sregs s;
    CHECK(ioctl(m->vcpu, KVM_GET_SREGS, &s));
    s.cr0 = 0x80010033; s.cr3 = sym("PML4"); s.cr4 = 0x620; s.efer = 0xd01;
    s.gdt.base = sym("gdt"); s.gdt.limit = sym("gdt_end") - sym("gdt") - 1;
    memset(&s.tr, 0, sizeof s.tr);
    s.tr.selector = 0x30; s.tr.base = sym("tss"); s.tr.limit = sym("tss_end") - sym("tss") - 1; s.tr.type = 11;
    s.tr.present = 1;
    segment(&s.cs, 0x2b, 1, 3);
    segment(&s.ds, 0x23, 0, 3);
    s.es = s.fs = s.gs = s.ss = s.ds;
    CHECK(ioctl(m->vcpu, KVM_SET_SREGS, &s));
    struct kvm_regs r = {.rip = rip, .rsp = sym("USER_STACK_TOP"), .rflags = 2};
    CHECK(ioctl(m->vcpu, KVM_SET_REGS, &r));
}

static void run_expect(struct machine *m, unsigned reason) {
    CHECK(ioctl(m->vcpu, KVM_RUN, 0));
    if (m->run->exit_reason != reason) {
        fprintf(stderr, "exit %u, expected %u\n", m->run->exit_reason, reason);
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: kvmbench IMAGE TEST COUNT [SYMBOL=VALUE...]\n"); return 2; }
    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 1; }
    image_size = fread(image, 1, sizeof image, f);
    fclose(f);
    const char *test = argv[2];
    long count = atol(argv[3]);
    for (int i = 4; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        for (int j = 0; eq && symbol_names[j]; j++)
            if (!strncmp(argv[i], symbol_names[j], eq - argv[i]) && strlen(symbol_names[j]) == (size_t)(eq - argv[i]))
                symbols[j] = strtoull(eq + 1, NULL, 0);
    }
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    CHECK(kvm);
    struct machine m;
    if (!strcmp(test, "create")) {
        uint64_t start = now_ns();
        for (long i = 0; i < count; i++) {
            machine_create(kvm, &m);
            careful_setup(kvm, &m);
            real_mode(&m, sym("out_loop16"));
            run_expect(&m, KVM_EXIT_IO);
            machine_destroy(&m);
        }
        printf("ns_per_op %.1f\n", (double)(now_ns() - start) / count);
        return 0;
    }
    if (!strcmp(test, "map1g")) {
        int vm = ioctl(kvm, KVM_CREATE_VM, 0);
        CHECK(vm);
        size_t size = 1ul << 30;
        void *memory = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (memory == MAP_FAILED) { perror("mmap"); return 1; }
        uint64_t map = 0, protect = 0, unmap = 0;
        for (long i = 0; i < count; i++) {
            struct kvm_userspace_memory_region r = {.slot = 0, .guest_phys_addr = 0, .memory_size = size,
                                                    .userspace_addr = (uint64_t)memory};
            uint64_t t0 = now_ns();
            CHECK(ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r));
            uint64_t t1 = now_ns();
            r.memory_size = 0;                       /* read-only: delete, then add with the flag */
            CHECK(ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r));
            r.memory_size = size; r.flags = KVM_MEM_READONLY;
            CHECK(ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r));
            uint64_t t2 = now_ns();
            r.memory_size = 0; r.flags = 0;
            CHECK(ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r));
            uint64_t t3 = now_ns();
            map += t1 - t0; protect += t2 - t1; unmap += t3 - t2;
        }
        printf("map_ns %.1f\nprotect_ns %.1f\nunmap_ns %.1f\n", (double)map / count, (double)protect / count,
               (double)unmap / count);
        return 0;
    }
    machine_create(kvm, &m);
    careful_setup(kvm, &m);   /* as jhv runs every vCPU: registers synchronised, kicks possible */
    if (!strcmp(test, "out16")) {
        real_mode(&m, sym("out_loop16"));
        run_expect(&m, KVM_EXIT_IO);
        uint64_t start = now_ns();
        for (long i = 0; i < count; i++) run_expect(&m, KVM_EXIT_IO);
        printf("ns_per_op %.1f\n", (double)(now_ns() - start) / count);
    } else if (!strcmp(test, "mmio3")) {
        ring3(&m, sym("mmio_loop"));
        run_expect(&m, KVM_EXIT_MMIO);
        uint64_t start = now_ns();
        for (long i = 0; i < count; i++) run_expect(&m, KVM_EXIT_MMIO);
        printf("ns_per_op %.1f\n", (double)(now_ns() - start) / count);
    } else if (!strcmp(test, "kick")) {
        /* As jhv kicks: the signal blocked in the vCPU thread, unblocked only inside KVM_RUN. */
        sigset_t block;
        sigemptyset(&block);
        sigaddset(&block, SIGRTMIN + 3);
        pthread_sigmask(SIG_BLOCK, &block, NULL);
        ring3(&m, sym("count_loop"));
        struct kvm_regs r;
        CHECK(ioctl(m.vcpu, KVM_GET_REGS, &r));
        r.rcx = ~0ul >> 1;
        CHECK(ioctl(m.vcpu, KVM_SET_REGS, &r));
        vcpu_thread = pthread_self();
        uint64_t *latency = calloc(count, sizeof *latency);
        pthread_t other;
        pthread_create(&other, NULL, kicker, (void *)count);
        struct timespec zero = {0, 0};
        for (long i = 0; i < count; i++) {
            if (ioctl(m.vcpu, KVM_RUN, 0) >= 0 || errno != EINTR) { fprintf(stderr, "expected EINTR\n"); return 1; }
            latency[i] = now_ns() - kick_sent;
            sigtimedwait(&block, NULL, &zero);
        }
        pthread_join(other, NULL);
        qsort(latency, count, sizeof *latency, compare);
        printf("ns_per_op %.1f\n", (double)latency[count / 2]);
    } else if (!strcmp(test, "hello")) {
        real_mode(&m, sym("hello16"));
        for (;;) {
            CHECK(ioctl(m.vcpu, KVM_RUN, 0));
            if (m.run->exit_reason != KVM_EXIT_IO) { fprintf(stderr, "exit %u\n", m.run->exit_reason); return 1; }
            uint8_t value = *((uint8_t *)m.run + m.run->io.data_offset);
            if (m.run->io.port == 0xf4) return (value << 1) | 1;
            if (m.run->io.port == 0x3f8) putchar(value);
        }
    } else if (!strcmp(test, "compute")) {
        ring3(&m, sym("count_loop"));
        struct kvm_regs r;
        CHECK(ioctl(m.vcpu, KVM_GET_REGS, &r));
        r.rcx = 1;
        CHECK(ioctl(m.vcpu, KVM_SET_REGS, &r));
        run_expect(&m, KVM_EXIT_MMIO);         /* warm: one short round */
        CHECK(ioctl(m.vcpu, KVM_GET_REGS, &r));
        r.rcx = count;
        CHECK(ioctl(m.vcpu, KVM_SET_REGS, &r));
        uint64_t start = now_ns();
        run_expect(&m, KVM_EXIT_MMIO);
        printf("ns_per_op %.3f\n", (double)(now_ns() - start) / count);
        long n = count;
        start = now_ns();
        __asm__ volatile("1: dec %0\n\tjnz 1b" : "+r"(n));
        printf("host_ns_per_op %.3f\n", (double)(now_ns() - start) / count);
    } else {
        fprintf(stderr, "unknown test %s\n", test);
        return 2;
    }
    machine_destroy(&m);
    return 0;
}
