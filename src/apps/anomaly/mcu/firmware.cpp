// Minimal bare-metal image for a Cortex-M4F that runs the anomaly detector core, used to prove
// that the core builds freestanding (no libc, no heap, no exceptions, no OS) and to measure its
// flash and RAM footprint (scripts/build-anomaly-mcu.sh). The "sensor" and "alarm" are
// memory-mapped registers; a real board would read an ADC and drive a pin instead.
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

constexpr uintptr_t kSensorValue = 0x40000000;  // float, written by the "ADC"
constexpr uintptr_t kSensorTime = 0x40000004;   // milliseconds since boot
constexpr uintptr_t kAlarmOut = 0x40000008;     // score in [0,1] as float

// The detector lives in .bss: its whole state is this one array.
alignas(edgelm::anomaly::Detector) unsigned char g_detector_storage[sizeof(edgelm::anomaly::Detector)];

[[noreturn]] void run() {
  auto* det = new (g_detector_storage) edgelm::anomaly::Detector();
  auto* value = reinterpret_cast<volatile float*>(kSensorValue);
  auto* time = reinterpret_cast<volatile uint32_t*>(kSensorTime);
  auto* alarm = reinterpret_cast<volatile float*>(kAlarmOut);
  uint32_t last = *time;
  for (;;) {
    const uint32_t now = *time;
    if (now == last) continue;  // a new sample arrives with a new timestamp
    last = now;
    *alarm = det->update(static_cast<int64_t>(now), *value);
  }
}

}  // namespace

extern "C" [[noreturn]] void Reset_Handler() {
  // Enable the FPU (CP10, CP11 full access) before any float instruction runs.
  *reinterpret_cast<volatile uint32_t*>(0xE000ED88) |= (0xFu << 20);
  for (uint32_t *src = &_sidata, *dst = &_sdata; dst < &_edata;) *dst++ = *src++;
  for (uint32_t* dst = &_sbss; dst < &_ebss;) *dst++ = 0;
  for (auto* f = __init_array_start; f < __init_array_end; ++f) (*f)();
  run();
}

extern "C" void Default_Handler() {
  for (;;) {
  }
}

// Initial stack pointer, reset vector, then the core exceptions (NMI .. SysTick).
__attribute__((section(".isr_vector"), used)) void (*const g_vectors[16])() = {
    reinterpret_cast<void (*)()>(&_estack), Reset_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, nullptr, nullptr, nullptr, nullptr,
    Default_Handler, Default_Handler, nullptr, Default_Handler, Default_Handler};
