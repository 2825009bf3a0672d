// The restricted unpickler: what it accepts, what it rejects, and that hostile input fails cleanly.
#include <gtest/gtest.h>

#include "core/checkpoint.h"
#include "core/error.h"
#include "core/pickle.h"
#include "tests/support/pickle_builder.h"

namespace dmeval {
namespace {

using test::PickleBuilder;

ValueId parse(const std::string& bytes, PickleDoc& doc, PickleOptions opt = {}) {
  MemorySource src("test.pkl", test::to_bytes(bytes));
  Cursor c(src);
  return unpickle(c, doc, opt);
}

std::string error_of(const std::string& bytes, PickleOptions opt = {}) {
  PickleDoc doc;
  try {
    parse(bytes, doc, opt);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Pickle, ParsesContainersAndScalars) {
  PickleBuilder b;
  b.proto().empty_dict().mark();
  b.str("a").integer(-5);
  b.str("big").integer(int64_t{1} << 40);
  b.str("list").empty_list().mark().integer(1).str("x").boolean(true).appends();
  b.str("none").none();
  b.setitems().stop();
  PickleDoc doc;
  ValueId root = parse(b.bytes(), doc);
  const Value& d = doc.at(root);
  ASSERT_EQ(d.kind, ValueKind::kDict);
  ASSERT_EQ(d.items.size(), 8u);
  EXPECT_EQ(doc.at(d.items[0]).s, "a");
  EXPECT_EQ(doc.at(d.items[1]).i, -5);
  EXPECT_EQ(doc.at(d.items[3]).i, int64_t{1} << 40);
  const Value& l = doc.at(d.items[5]);
  ASSERT_EQ(l.kind, ValueKind::kList);
  ASSERT_EQ(l.items.size(), 3u);
  EXPECT_EQ(doc.at(l.items[1]).s, "x");
  EXPECT_EQ(doc.at(d.items[7]).kind, ValueKind::kNone);
}

TEST(Pickle, RejectsOsSystemByName) {
  // The classic exploit: os.system('...') via GLOBAL + REDUCE.
  PickleBuilder b;
  b.proto().global("os", "system").mark().str("echo pwned").tuple().reduce().stop();
  std::string err = error_of(b.bytes());
  EXPECT_NE(err.find("os.system"), std::string::npos) << err;
  EXPECT_NE(err.find("test.pkl"), std::string::npos) << err;
  EXPECT_NE(err.find("offset"), std::string::npos) << err;
}

TEST(Pickle, RejectsOtherDangerousGlobalsAndOpcodes) {
  for (auto [mod, name] : {std::pair{"builtins", "eval"},
                           {"subprocess", "Popen"},
                           {"posix", "system"},
                           {"torch", "load"},
                           {"numpy", "load"}}) {
    PickleBuilder b;
    b.proto().global(mod, name).stop();
    std::string err = error_of(b.bytes());
    EXPECT_NE(err.find(std::string(mod) + "." + name), std::string::npos) << err;
  }
  // STACK_GLOBAL (protocol 4) is checked the same way.
  PickleBuilder sg;
  sg.proto(4).str("os").str("system").op(0x93).stop();
  EXPECT_NE(error_of(sg.bytes()).find("os.system"), std::string::npos);
  // INST and OBJ build arbitrary objects.
  EXPECT_NE(error_of(PickleBuilder().proto().mark().raw("ios\nsystem\n").stop().bytes()).find("INST"),
            std::string::npos);
}

TEST(Pickle, OpaqueObjectsAreInertRecords) {
  PickleBuilder b;
  b.proto().global("argparse", "Namespace").empty_tuple().reduce().empty_dict().build().stop();
  EXPECT_NE(error_of(b.bytes()).find("argparse.Namespace"), std::string::npos);
  PickleOptions opt;
  opt.opaque_objects = true;
  PickleDoc doc;
  ValueId root = parse(b.bytes(), doc, opt);
  EXPECT_EQ(doc.at(root).kind, ValueKind::kObject);
  EXPECT_EQ(doc.at(root).s, "argparse.Namespace");
}

TEST(Pickle, SelfReferenceDoesNotLoopOrLeak) {
  // l = []; l.append(l)  ->  EMPTY_LIST BINPUT 0 BINGET 0 APPEND
  PickleBuilder b;
  b.proto().empty_list().binput(0).binget(0).append().stop();
  PickleDoc doc;
  ValueId root = parse(b.bytes(), doc);
  ASSERT_EQ(doc.at(root).items.size(), 1u);
  EXPECT_EQ(doc.at(root).items[0], root);
  EXPECT_EQ(value_summary(doc, root), "list[1]");
}

TEST(Pickle, TruncationAndGarbageFailWithOffsets) {
  PickleBuilder b;
  b.proto().empty_dict().str("key");
  std::string err = error_of(b.bytes());  // no STOP
  EXPECT_NE(err.find("truncated"), std::string::npos) << err;
  EXPECT_NE(error_of(PickleBuilder().proto().op(0xff).bytes()).find("opcode 0xff"), std::string::npos);
  EXPECT_NE(error_of(PickleBuilder().proto().append().stop().bytes()).find("underflow"), std::string::npos);
  EXPECT_NE(error_of(PickleBuilder().proto().binget(7).stop().bytes()).find("memo key 7"), std::string::npos);
  // A string claiming 4 GB with 3 bytes present: refused before allocating.
  std::string huge =
      PickleBuilder().proto().op('X').raw(std::string("\xff\xff\xff\xff", 4)).raw("abc").bytes();
  EXPECT_NE(error_of(huge).find("truncated"), std::string::npos);
}

TEST(Pickle, ValueLimitStopsHostileGrowth) {
  PickleBuilder b;
  b.proto();
  for (int i = 0; i < 100; ++i) b.empty_list();
  PickleOptions opt;
  opt.max_values = 50;
  EXPECT_NE(error_of(b.bytes(), opt).find("more than 50 values"), std::string::npos);
}

TEST(Pickle, TensorViewOutsideStorageIsRejected) {
  PickleBuilder b;
  b.proto().global("torch._utils", "_rebuild_tensor_v2").mark();
  b.mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu").integer(4).tuple().binpersid();
  b.integer(2)
      .int_tuple({2, 2})
      .int_tuple({2, 1})
      .boolean(false)
      .global("collections", "OrderedDict")
      .empty_tuple()
      .reduce()
      .tuple()
      .reduce()
      .stop();
  std::string err = error_of(b.bytes());
  EXPECT_NE(err.find("needs 6 elements of storage '0', which has 4"), std::string::npos) << err;
}

TEST(Pickle, CodecsEncodeGivesBytes) {
  PickleBuilder b;
  b.proto().global("_codecs", "encode").mark().str("A\xc3\xbf").str("latin1").tuple().reduce().stop();
  PickleDoc doc;
  ValueId root = parse(b.bytes(), doc);
  ASSERT_EQ(doc.at(root).kind, ValueKind::kBytes);
  EXPECT_EQ(doc.at(root).s, std::string("A\xff"));
}

}  // namespace
}  // namespace dmeval
