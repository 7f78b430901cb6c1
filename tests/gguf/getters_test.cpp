// Typed metadata getters: integer getters accept any integer type whose value fits; everything
// else (missing key, wrong type, out of range) is a one-line edgelm::Error naming file and key.
#include <gtest/gtest.h>

#include <limits>

#include "gguf/gguf_test_support.hpp"

namespace edgelm::gguf {
namespace {

using testing::ScratchDir;

class Getters : public ::testing::Test {
 protected:
  void SetUp() override {
    Writer w;
    put_unsigned(w, "u8", ValueType::U8, 200);
    put_unsigned(w, "u64_small", ValueType::U64, 42);
    put_unsigned(w, "u64_big", ValueType::U64, std::numeric_limits<uint64_t>::max());
    put_unsigned(w, "u32_max", ValueType::U32, std::numeric_limits<uint32_t>::max());
    put_signed(w, "i8_neg", ValueType::I8, -3);
    put_signed(w, "i16_pos", ValueType::I16, 1234);
    put_signed(w, "i64_min", ValueType::I64, std::numeric_limits<int64_t>::min());
    put_signed(w, "i64_2_32", ValueType::I64, int64_t{1} << 32);
    Value f64;
    f64.type = ValueType::F64;
    f64.f = 0.25;
    w.set("f64", f64);
    f64.f = 1e300;
    w.set("f64_huge", f64);
    w.set_f32("f32", 2.5f);
    w.set_bool("flag", false);
    w.set_string("name", "smol");
    w.set_string_array("strings", {"x", "y"});
    w.set_i32_array("ints", {1, -2, 3});
    w.set_f32_array("floats", {0.5f});
    Value u32s;
    u32s.type = ValueType::ARRAY;
    u32s.elem_type = ValueType::U32;
    u32s.array.resize(2);
    for (auto& e : u32s.array) e.type = ValueType::U32;
    u32s.array[0].u = 7;
    u32s.array[1].u = 3000000000u;  // above INT32_MAX
    w.set("u32s", u32s);
    u32s.array.pop_back();
    w.set("u32s_small", u32s);
    path_ = dir_.file("g.gguf");
    w.write(path_);
    file_ = std::make_unique<File>(File::open(path_));
  }

  static void put_unsigned(Writer& w, const char* k, ValueType t, uint64_t u) {
    Value v;
    v.type = t;
    v.u = u;
    w.set(k, v);
  }
  static void put_signed(Writer& w, const char* k, ValueType t, int64_t i) {
    Value v;
    v.type = t;
    v.i = i;
    w.set(k, v);
  }

  // Runs `f`, which must throw edgelm::Error, and returns its message.
  template <class F>
  std::string error_of(F f) {
    try {
      f();
    } catch (const Error& e) {
      return e.message();
    }
    ADD_FAILURE() << "no edgelm::Error thrown";
    return {};
  }

  const File& f() const { return *file_; }

  ScratchDir dir_;
  std::string path_;
  std::unique_ptr<File> file_;
};

TEST_F(Getters, IntegerGettersAcceptAnyIntegerTypeThatFits) {
  EXPECT_EQ(f().get_u32("u8"), 200u);
  EXPECT_EQ(f().get_u32("u64_small"), 42u);
  EXPECT_EQ(f().get_u32("i16_pos"), 1234u);
  EXPECT_EQ(f().get_u32("u32_max"), std::numeric_limits<uint32_t>::max());
  EXPECT_EQ(f().get_i64("i8_neg"), -3);
  EXPECT_EQ(f().get_i64("i64_min"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(f().get_i64("u32_max"), 4294967295);
  EXPECT_EQ(f().get_i64("i64_2_32"), int64_t{1} << 32);
}

TEST_F(Getters, IntegerGettersRejectValuesOutOfRange) {
  std::string m = error_of([&] { f().get_u32("i8_neg"); });
  EXPECT_NE(m.find("'i8_neg'"), std::string::npos) << m;
  EXPECT_NE(m.find("-3"), std::string::npos) << m;
  EXPECT_THROW(f().get_u32("i64_2_32"), Error);
  EXPECT_THROW(f().get_u32("u64_big"), Error);
  EXPECT_THROW(f().get_i64("u64_big"), Error);
}

TEST_F(Getters, WrongTypeNamesBothTypes) {
  const std::string m = error_of([&] { f().get_u32("name"); });
  EXPECT_NE(m.find(path_), std::string::npos) << m;
  EXPECT_NE(m.find("metadata key 'name' has type string, expected an integer"), std::string::npos)
      << m;
  EXPECT_EQ(m.find('\n'), std::string::npos);
  EXPECT_THROW(f().get_string("u8"), Error);
  EXPECT_THROW(f().get_bool("u8"), Error);
  EXPECT_THROW(f().get_f32("name"), Error);
  EXPECT_THROW(f().get_u32("flag"), Error);  // a bool is not an integer
  EXPECT_THROW(f().get_u32("ints"), Error);
}

TEST_F(Getters, MissingKeyIsNamed) {
  const std::string m = error_of([&] { f().get_string("llama.context_length"); });
  EXPECT_NE(m.find("'llama.context_length' is missing"), std::string::npos) << m;
  EXPECT_NE(m.find(path_), std::string::npos) << m;
  EXPECT_THROW(f().get_u32("nope"), Error);
  EXPECT_THROW(f().get_i32_array("nope"), Error);
  EXPECT_FALSE(f().has("nope"));
  EXPECT_EQ(f().find("nope"), nullptr);
}

TEST_F(Getters, FloatGetterAcceptsFloatsAndIntegers) {
  EXPECT_EQ(f().get_f32("f32"), 2.5f);
  EXPECT_EQ(f().get_f32("f64"), 0.25f);
  EXPECT_EQ(f().get_f32("u8"), 200.f);
  EXPECT_EQ(f().get_f32("i8_neg"), -3.f);
  EXPECT_THROW(f().get_f32("f64_huge"), Error);  // beyond float range
}

TEST_F(Getters, BoolAndString) {
  EXPECT_FALSE(f().get_bool("flag"));
  EXPECT_EQ(f().get_string("name"), "smol");
}

TEST_F(Getters, Arrays) {
  EXPECT_EQ(f().get_string_array("strings"), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(f().get_i32_array("ints"), (std::vector<int32_t>{1, -2, 3}));
  EXPECT_EQ(f().get_i32_array("u32s_small"), (std::vector<int32_t>{7}));
  EXPECT_EQ(f().get_f32_array("floats"), (std::vector<float>{0.5f}));
  EXPECT_EQ(f().get_f32_array("ints"), (std::vector<float>{1.f, -2.f, 3.f}));
  EXPECT_THROW(f().get_i32_array("u32s"), Error);  // 3e9 does not fit in i32
  EXPECT_THROW(f().get_string_array("ints"), Error);
  EXPECT_THROW(f().get_i32_array("strings"), Error);
  EXPECT_THROW(f().get_f32_array("strings"), Error);
  EXPECT_THROW(f().get_string_array("name"), Error);  // not an array at all
  const std::string m = error_of([&] { f().get_string_array("ints"); });
  EXPECT_NE(m.find("array of i32"), std::string::npos) << m;
}

TEST_F(Getters, DefaultsApplyOnlyToMissingKeys) {
  EXPECT_EQ(f().get_string_or("absent", "dflt"), "dflt");
  EXPECT_EQ(f().get_u32_or("absent", 7), 7u);
  EXPECT_EQ(f().get_f32_or("absent", 1.5f), 1.5f);
  EXPECT_TRUE(f().get_bool_or("absent", true));
  EXPECT_EQ(f().get_string_or("name", "dflt"), "smol");
  EXPECT_EQ(f().get_u32_or("u8", 7), 200u);
  EXPECT_EQ(f().get_f32_or("f32", 1.5f), 2.5f);
  EXPECT_FALSE(f().get_bool_or("flag", true));
  EXPECT_THROW(f().get_string_or("u8", "dflt"), Error);
  EXPECT_THROW(f().get_u32_or("name", 7), Error);
  EXPECT_THROW(f().get_f32_or("name", 1.5f), Error);
  EXPECT_THROW(f().get_bool_or("name", true), Error);
}

}  // namespace
}  // namespace edgelm::gguf
