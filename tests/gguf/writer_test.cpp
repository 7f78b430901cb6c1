// Writer behaviour beyond round trips: atomic replacement, clean failure, input validation,
// insertion order and the alignment key.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "gguf/atomic_file_writer.hpp"

#include "gguf/gguf_test_support.hpp"

namespace edgelm::gguf {
namespace {

using testing::ScratchDir;

std::vector<std::byte> zeros(size_t n) { return std::vector<std::byte>(n); }

bool has_temp_files(const ScratchDir& dir) {
  for (const auto& name : dir.entries()) {
    if (name.find(".tmp.") != std::string::npos) return true;
  }
  return false;
}

TEST(Writer, ReplacesAnExistingFileAtomically) {
  ScratchDir dir;
  const std::string path = dir.file("m.gguf");
  Writer first;
  first.set_string("general.name", "first");
  first.write(path);

  Writer second;
  second.set_string("general.name", "second");
  second.write(path);
  EXPECT_EQ(File::open(path).get_string("general.name"), "second");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"m.gguf"});
}

TEST(Writer, OverwritingAMappedFileLeavesTheOpenMappingIntact) {
  ScratchDir dir;
  const std::string path = dir.file("m.gguf");
  auto data = zeros(16);
  data[0] = std::byte{0x11};
  Writer w;
  w.add_tensor("w", DType::F32, {4}, data.data(), data.size());
  w.write(path);
  const File old = File::open(path);
  const TensorView v = old.tensor("w");

  // Quantize-in-place workflows read a model and write the result over it.
  Writer w2;
  data[0] = std::byte{0x22};
  w2.add_tensor("w", DType::F32, {4}, data.data(), data.size());
  w2.write(path);
  EXPECT_EQ(v.data[0], std::byte{0x11});
  EXPECT_EQ(File::open(path).tensor("w").data[0], std::byte{0x22});
}

TEST(Writer, MissingDirectoryIsAClearError) {
  ScratchDir dir;
  const std::string path = dir.file("no/such/dir/m.gguf");
  try {
    Writer().write(path);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find(path), std::string::npos) << e.message();
    EXPECT_EQ(e.message().find('\n'), std::string::npos);
  }
  EXPECT_TRUE(dir.entries().empty());
}

TEST(Writer, FailedWriteKeepsTheOldFileAndRemovesTheTemporary) {
  ScratchDir dir;
  const std::string path = dir.file("m.gguf");
  Writer small;
  small.set_string("general.name", "old");
  small.write(path);
  const std::string before = testing::read_file(path);

  // A file-size limit makes write() fail with EFBIG part way through, like a full disk would.
  Writer big;
  const auto data = zeros(1 << 20);
  big.add_tensor("w", DType::I8, {1 << 20}, data.data(), data.size());
  struct rlimit saved {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  struct rlimit limited = saved;
  limited.rlim_cur = 64 * 1024;
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limited), 0);
  std::string message;
  try {
    big.write(path);
  } catch (const Error& e) {
    message = e.message();
  }
  setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, old_handler);

  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_EQ(testing::read_file(path), before);
  EXPECT_FALSE(has_temp_files(dir));
}

// The temporary file of a write in progress when SIGINT or SIGTERM ends the process.
TEST(Writer, ASignalRemovesTheTemporaryFileAndStillEndsTheProcess) {
  for (int sig : {SIGINT, SIGTERM}) {
    ScratchDir dir;
    const std::string path = dir.file("model.gguf");
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      std::signal(sig, SIG_DFL);  // as in a program started from a shell
      AtomicFileWriter w(path);
      w.write("partial", 7);
      ::raise(sig);
      ::_exit(0);  // not reached: the signal ends the process
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == sig) << "signal " << sig << ", status " << status;
    EXPECT_EQ(dir.entries(), std::vector<std::string>{}) << "signal " << sig;
  }
}

// SIGKILL leaves the temporary file; the next write of the same path removes it (and only it).
TEST(Writer, AKilledWritersTemporaryFileIsRemovedByTheNextWrite) {
  ScratchDir dir;
  const std::string path = dir.file("model.gguf");
  const pid_t gone = ::fork();
  ASSERT_GE(gone, 0);
  if (gone == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(gone, nullptr, 0), gone);
  const std::string stale = path + ".tmp." + std::to_string(gone) + ".00112233445566778899";
  const std::string live = path + ".tmp." + std::to_string(::getpid()) + ".aabbccddeeff0011";
  const std::string other = dir.file("other.gguf.tmp.1.00");
  for (const auto& f : {stale, live, other}) std::ofstream(f) << "x";
  {
    AtomicFileWriter w(path);
    w.write("new", 3);
    w.commit();
  }
  EXPECT_FALSE(std::filesystem::exists(stale));
  EXPECT_TRUE(std::filesystem::exists(live));   // its process is running (this one)
  EXPECT_TRUE(std::filesystem::exists(other));  // another file's
  EXPECT_TRUE(std::filesystem::exists(path));
}

TEST(Writer, NewFilesFollowTheUmask) {
  ScratchDir dir;
  const mode_t old_mask = umask(022);
  Writer().write(dir.file("m.gguf"));
  umask(old_mask);
  struct stat st {};
  ASSERT_EQ(stat(dir.file("m.gguf").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

TEST(Writer, SetReplacesInPlaceAndRemoveDeletes) {
  ScratchDir dir;
  Writer w;
  w.set_u32("a", 1);
  w.set_u32("b", 2);
  w.set_u32("c", 3);
  w.set_u32("a", 10);
  w.remove("b");
  w.remove("not-there");
  w.write(dir.file("m.gguf"));
  const File f = File::open(dir.file("m.gguf"));
  EXPECT_EQ(f.keys(), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(f.get_u32("a"), 10u);
}

TEST(Writer, TensorDataIsPaddedToTheAlignment) {
  ScratchDir dir;
  Writer w;
  const auto five = zeros(20);
  w.add_tensor("a", DType::F32, {5}, five.data(), five.size());
  w.add_tensor("b", DType::F32, {5}, five.data(), five.size());
  w.write(dir.file("m.gguf"));
  const File f = File::open(dir.file("m.gguf"));
  EXPECT_EQ(f.tensors()[0].offset, 0u);
  EXPECT_EQ(f.tensors()[1].offset, 32u);
  EXPECT_EQ(f.file_size() % 32, 0u);
}

TEST(Writer, AlignmentKeyAndSetAlignmentAgree) {
  ScratchDir dir;
  Writer w;
  EXPECT_THROW(w.set_alignment(0), Error);
  EXPECT_THROW(w.set_alignment(48), Error);
  EXPECT_THROW(w.set_alignment(uint64_t{1} << 32), Error);
  EXPECT_THROW(w.set_string("general.alignment", "64"), Error);
  EXPECT_THROW(w.set_u32("general.alignment", 3), Error);
  w.set_u32("general.alignment", 128);
  const auto data = zeros(4);
  w.add_tensor("a", DType::F32, {1}, data.data(), data.size());
  w.add_tensor("b", DType::F32, {1}, data.data(), data.size());
  w.write(dir.file("m.gguf"));
  const File f = File::open(dir.file("m.gguf"));
  EXPECT_EQ(f.alignment(), 128u);
  EXPECT_EQ(f.tensors()[1].offset, 128u);

  w.remove("general.alignment");  // back to the default
  w.write(dir.file("d.gguf"));
  EXPECT_EQ(File::open(dir.file("d.gguf")).tensors()[1].offset, 32u);
}

TEST(Writer, RejectsInvalidTensors) {
  Writer w;
  const auto buf = zeros(1024);
  EXPECT_THROW(w.add_tensor("", DType::F32, {1}, buf.data(), 4), Error);
  EXPECT_THROW(w.add_tensor(std::string(64, 'n'), DType::F32, {1}, buf.data(), 4), Error);
  EXPECT_THROW(w.add_tensor("t", DType::F32, {}, buf.data(), 0), Error);
  EXPECT_THROW(w.add_tensor("t", DType::F32, {1, 1, 1, 1, 1}, buf.data(), 4), Error);
  EXPECT_THROW(w.add_tensor("t", DType::F32, {4, 0}, buf.data(), 0), Error);
  EXPECT_THROW(w.add_tensor("t", DType::F32, {-4}, buf.data(), 16), Error);
  EXPECT_THROW(w.add_tensor("t", DType::Q4_1, {33}, buf.data(), 20), Error);
  EXPECT_THROW(w.add_tensor("t", DType::F32, {4}, buf.data(), 15), Error);
  EXPECT_THROW(w.add_tensor("t", DType::F32, {4}, nullptr, 16), Error);
  EXPECT_THROW(w.add_tensor("t", static_cast<DType>(16), {256}, buf.data(), 66), Error);
  EXPECT_THROW(w.add_tensor("t", DType::F32, {INT64_MAX, INT64_MAX}, buf.data(), 16), Error);
  w.add_tensor(std::string(63, 'n'), DType::F32, {4}, buf.data(), 16);
  w.add_tensor("t", DType::Q4_1, {64, 2}, buf.data(), 80);
  try {
    w.add_tensor("t", DType::F32, {4}, buf.data(), 16);
    FAIL() << "duplicate accepted";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("'t'"), std::string::npos) << e.message();
  }
}

TEST(Writer, RejectsValuesThatCannotBeWrittenFaithfully) {
  Writer w;
  Value v;
  v.type = ValueType::U8;
  v.u = 256;
  EXPECT_THROW(w.set("k", v), Error);
  v.type = ValueType::I16;
  v.i = -40000;
  EXPECT_THROW(w.set("k", v), Error);
  v.type = ValueType::BOOL;
  v.u = 2;
  EXPECT_THROW(w.set("k", v), Error);
  v.type = ValueType::F32;
  v.f = 1e300;
  EXPECT_THROW(w.set("k", v), Error);
  v.type = static_cast<ValueType>(13);
  EXPECT_THROW(w.set("k", v), Error);

  Value arr;
  arr.type = ValueType::ARRAY;
  arr.elem_type = ValueType::I32;
  arr.array.resize(1);
  arr.array[0].type = ValueType::STRING;  // element type differs from the array's
  EXPECT_THROW(w.set("k", arr), Error);

  Value nested;  // 9 levels of arrays: one more than readers accept
  nested.type = ValueType::U8;
  for (int level = 0; level < 9; ++level) {
    Value outer;
    outer.type = ValueType::ARRAY;
    outer.elem_type = nested.type;
    outer.array.push_back(std::move(nested));
    nested = std::move(outer);
  }
  EXPECT_THROW(w.set("k", nested), Error);

  Value ok;
  ok.type = ValueType::U8;
  EXPECT_THROW(w.set("", ok), Error);
  EXPECT_THROW(w.set(std::string(65536, 'k'), ok), Error);
  w.set("k", ok);
}

}  // namespace
}  // namespace edgelm::gguf
