// Bare-metal image for a Cortex-M4F that runs the anomaly detector core over a recorded series:
// no libc, no heap, no exceptions, no OS. It reads the series from the host over Arm
// semihosting (file `series.bin` in the emulator's working directory, written by
// `anomaly_mcu_check encode`), writes one float32 score per sample to `scores.bin`, and prints
// one line: the sample count and the SysTick ticks spent inside Detector::update (the I/O is
// not counted). scripts/run-anomaly-mcu.sh runs it under qemu-system-arm (board mps2-an386) and
// compares the scores with the host build's. On a board without a debugger attached a
// semihosting call would stop the core: a real deployment reads an ADC instead of series.bin.
//
// series.bin: "EDAN" + uint32 sample count, then per sample int64 timestamp (ms) + float32
// value, little-endian, packed (12 bytes).
#include <cstddef>
#include <cstdint>
#include <new>

#include "edgelm/anomaly/detector.hpp"

extern "C" {
// Symbols from mcu/cortex_m4.ld.
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern void (*__init_array_start[])();
extern void (*__init_array_end[])();

// GCC may emit calls to these for block copies and clears even with -ffreestanding; a
// freestanding program must provide them.
void* memcpy(void* dst, const void* src, size_t n) {
  auto* d = static_cast<unsigned char*>(dst);
  auto* s = static_cast<const unsigned char*>(src);
  while (n--) *d++ = *s++;
  return dst;
}
void* memmove(void* dst, const void* src, size_t n) {
  auto* d = static_cast<unsigned char*>(dst);
  auto* s = static_cast<const unsigned char*>(src);
  if (d < s) {
    while (n--) *d++ = *s++;
  } else {
    while (n--) d[n] = s[n];
  }
  return dst;
}
void* memset(void* dst, int c, size_t n) {
  auto* d = static_cast<unsigned char*>(dst);
  while (n--) *d++ = static_cast<unsigned char>(c);
  return dst;
}
int memcmp(const void* a, const void* b, size_t n) {
  auto* x = static_cast<const unsigned char*>(a);
  auto* y = static_cast<const unsigned char*>(b);
  for (; n; --n, ++x, ++y)
    if (*x != *y) return *x < *y ? -1 : 1;
  return 0;
}
}

namespace {

// --- Arm semihosting (the debugger / emulator services a BKPT 0xAB) ---------------------------
enum : int { kSysOpen = 0x01, kSysClose = 0x02, kSysWrite0 = 0x04, kSysWrite = 0x05, kSysRead = 0x06,
             kSysExitExtended = 0x20 };
constexpr uint32_t kAppExit = 0x20026;  // ADP_Stopped_ApplicationExit

int semihost(int op, const void* arg) {
  register int r0 asm("r0") = op;
  register const void* r1 asm("r1") = arg;
  asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

size_t length(const char* s) {
  size_t n = 0;
  while (s[n]) ++n;
  return n;
}

void print(const char* s) { semihost(kSysWrite0, s); }

[[noreturn]] void exit_with(uint32_t code) {
  const uint32_t block[2] = {kAppExit, code};
  semihost(kSysExitExtended, block);
  for (;;) {
  }
}

[[noreturn]] void fail(const char* what) {
  print("anomaly-mcu: error: ");
  print(what);
  print("\n");
  exit_with(1);
}

int open_file(const char* name, uint32_t mode) {  // mode 1 = "rb", 5 = "wb"
  const uint32_t block[3] = {reinterpret_cast<uint32_t>(name), mode, static_cast<uint32_t>(length(name))};
  return semihost(kSysOpen, block);
}

// Reads exactly n bytes; false at end of file (or on a short read).
bool read_exact(int fd, void* buf, uint32_t n) {
  const uint32_t block[3] = {static_cast<uint32_t>(fd), reinterpret_cast<uint32_t>(buf), n};
  return semihost(kSysRead, block) == 0;  // returns the number of bytes NOT read
}

void write_all(int fd, const void* buf, uint32_t n) {
  const uint32_t block[3] = {static_cast<uint32_t>(fd), reinterpret_cast<uint32_t>(buf), n};
  if (semihost(kSysWrite, block) != 0) fail("cannot write scores.bin");
}

// Decimal text of v into out (at least 21 bytes); returns out.
char* decimal(uint64_t v, char* out) {
  char tmp[21];
  int n = 0;
  do tmp[n++] = static_cast<char>('0' + v % 10), v /= 10;
  while (v);
  for (int i = 0; i < n; ++i) out[i] = tmp[n - 1 - i];
  out[n] = 0;
  return out;
}

// --- SysTick as a free-running 24-bit down-counter on the core clock --------------------------
volatile uint32_t& syst_csr() { return *reinterpret_cast<volatile uint32_t*>(0xE000E010); }
volatile uint32_t& syst_rvr() { return *reinterpret_cast<volatile uint32_t*>(0xE000E014); }
volatile uint32_t& syst_cvr() { return *reinterpret_cast<volatile uint32_t*>(0xE000E018); }

// The detector lives in .bss: its whole state is this one array.
alignas(edgelm::anomaly::Detector) unsigned char g_detector_storage[sizeof(edgelm::anomaly::Detector)];

constexpr int kChunk = 32;  // samples per semihosting read / write
constexpr uint32_t kRecordBytes = 12;
unsigned char g_in[kChunk * kRecordBytes];
float g_scores[kChunk];

[[noreturn]] void run() {
  const int in = open_file("series.bin", 1);
  if (in < 0) fail("cannot open series.bin (write it with anomaly_mcu_check encode)");
  const int out = open_file("scores.bin", 5);
  if (out < 0) fail("cannot create scores.bin");
  unsigned char header[8];
  if (!read_exact(in, header, 8) || memcmp(header, "EDAN", 4) != 0) fail("series.bin does not start with EDAN");
  uint32_t total = 0;
  memcpy(&total, header + 4, 4);

  auto* det = new (g_detector_storage) edgelm::anomaly::Detector();
  syst_rvr() = 0x00FFFFFF;
  syst_cvr() = 0;
  syst_csr() = 0x5;  // enable, core clock, no interrupt
  uint64_t ticks = 0;
  uint32_t done = 0;
  while (done < total) {
    const uint32_t n = total - done < kChunk ? total - done : kChunk;
    if (!read_exact(in, g_in, n * kRecordBytes)) fail("series.bin is shorter than its header says");
    const uint32_t start = syst_cvr();
    for (uint32_t i = 0; i < n; ++i) {
      int64_t t;
      float v;
      memcpy(&t, g_in + i * kRecordBytes, 8);
      memcpy(&v, g_in + i * kRecordBytes + 8, 4);
      g_scores[i] = det->update(t, v);
    }
    ticks += (start - syst_cvr()) & 0x00FFFFFF;  // the counter counts down
    write_all(out, g_scores, n * 4);
    done += n;
  }
  semihost(kSysClose, &in);
  semihost(kSysClose, &out);
  char num[21];
  print("anomaly-mcu: samples ");
  print(decimal(done, num));
  print(" systick_ticks ");
  print(decimal(ticks, num));
  print("\n");
  exit_with(0);
}

}  // namespace

extern "C" [[noreturn]] void Reset_Handler() {
  // Enable the FPU (CP10, CP11 full access) before any float instruction runs.
  *reinterpret_cast<volatile uint32_t*>(0xE000ED88) |= (0xFu << 20);
  asm volatile("dsb\n isb" ::: "memory");
  for (uint32_t *src = &_sidata, *dst = &_sdata; dst < &_edata;) *dst++ = *src++;
  for (uint32_t* dst = &_sbss; dst < &_ebss;) *dst++ = 0;
  for (auto* f = __init_array_start; f < __init_array_end; ++f) (*f)();
  run();
}

// Any fault ends the run with a message instead of spinning forever.
extern "C" [[noreturn]] void Fault_Handler() { fail("processor fault"); }
extern "C" [[noreturn]] void Default_Handler() { fail("unexpected interrupt"); }

// Initial stack pointer, reset vector, then the core exceptions (NMI .. SysTick).
__attribute__((section(".isr_vector"), used)) void (*const g_vectors[16])() = {
    reinterpret_cast<void (*)()>(&_estack), Reset_Handler, Default_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler, Fault_Handler, nullptr, nullptr, nullptr, nullptr,
    Default_Handler, Default_Handler, nullptr, Default_Handler, Default_Handler};
