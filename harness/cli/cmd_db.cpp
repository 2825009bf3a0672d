// `dmeval db list|show|export|gc`: what the results database holds.
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "db/results.h"
#include "db/sqlite.h"
#include "harness/cli/commands.h"
#include "harness/cli/db_cli.h"
#include "reports/table.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace dmeval::cli {

namespace {

using ojson = nlohmann::ordered_json;

// Every column of the current row as JSON (NULL -> null; non-finite reals -> their name as a string).
ojson row_json(const db::Statement& s) {
  ojson o = ojson::object();
  for (int c = 0; c < s.columns(); ++c) {
    switch (s.column_type(c)) {
      case SQLITE_NULL: o[s.column_name(c)] = nullptr; break;
      case SQLITE_INTEGER: o[s.column_name(c)] = s.int64(c); break;
      case SQLITE_FLOAT: {
        double v = s.real(c);
        o[s.column_name(c)] =
            std::isfinite(v) ? ojson(v) : ojson(std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"));
        break;
      }
      default: o[s.column_name(c)] = s.text(c);
    }
  }
  return o;
}

std::vector<ojson> query(db::Connection& c, const std::string& sql, int64_t id = -1) {
  db::Statement s(c, sql);
  if (id >= 0) s.bind(1, id);
  std::vector<ojson> out;
  while (s.step()) out.push_back(row_json(s));
  return out;
}

std::string csv_cell(const ojson& v) {
  if (v.is_null()) return "";
  return reports::csv_field(v.is_string() ? v.get<std::string>() : v.dump());
}

std::string sql_literal(const db::Statement& s, int c) {
  char buf[40];
  switch (s.column_type(c)) {
    case SQLITE_NULL: return "NULL";
    case SQLITE_INTEGER: return std::to_string(s.int64(c));
    case SQLITE_FLOAT:
      if (!std::isfinite(s.real(c)))
        return std::isnan(s.real(c)) ? "NULL" : (s.real(c) > 0 ? "9e999" : "-9e999");
      std::snprintf(buf, sizeof buf, "%.17g", s.real(c));
      return buf;
    default: {
      std::string q = "'";
      for (char ch : s.text(c)) q += ch == '\'' ? std::string("''") : std::string(1, ch);
      return q + "'";
    }
  }
}

constexpr const char* kMetricsExport =
    "SELECT m.run_id, r.tag, r.status, r.started_at, r.git_revision, c.method, c.w_bits, c.a_bits, c.steps, "
    "c.sampler, c.samples, m.name, m.value, m.std, m.n, m.dataset, m.item, m.feature_network, "
    "m.weights_sha256, "
    "m.mode, m.compat, rs.path AS reference_path, rs.sha256 AS reference_sha256 FROM metrics m JOIN runs r "
    "ON "
    "r.id = m.run_id LEFT JOIN run_configs c ON c.run_id = m.run_id LEFT JOIN reference_sets rs ON rs.id = "
    "m.reference_set_id ORDER BY m.run_id, m.id";

}  // namespace

void add_db_command(CLI::App& app) {
  struct Opts {
    std::string db, tag, run, format = "csv", out;
    bool json = false, yes = false, items = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("db", "inspect and export the results database");
  cmd->require_subcommand(1);
  auto db_opt = [&](CLI::App* c) {
    c->add_option("--db", o->db, "results database (default: $DMEVAL_DB, else ./dmeval.db)");
  };
  auto open = [o]() { return open_existing_db(o->db); };

  auto* list = cmd->add_subcommand("list", "runs, newest last");
  db_opt(list);
  list->add_option("--tag", o->tag, "only runs with this tag");
  list->add_flag("--json", o->json, "machine-readable output");
  list->callback([o, open] {
    db::ResultsDb r = open();
    auto runs = r.list_runs(o->tag);
    if (o->json) {
      ojson a = ojson::array();
      for (const auto& x : runs)
        a.push_back({{"id", x.id},
                     {"started_at", x.started_at},
                     {"ended_at", x.ended_at},
                     {"status", x.status},
                     {"tag", x.tag},
                     {"metrics", x.metrics},
                     {"git_revision", x.git_revision},
                     {"command_line", x.command_line}});
      std::printf("%s\n", a.dump(2).c_str());
      return;
    }
    std::printf("%5s  %-24s %-11s %-16s %7s  %s\n", "run", "started (UTC)", "status", "tag", "metrics",
                "command");
    for (const auto& x : runs)
      std::printf("%5lld  %-24s %-11s %-16s %7lld  %s\n", static_cast<long long>(x.id), x.started_at.c_str(),
                  x.status.c_str(), x.tag.c_str(), static_cast<long long>(x.metrics),
                  x.command_line.substr(0, 80).c_str());
  });

  auto tag_prefix = std::make_shared<std::string>();
  auto* tags = cmd->add_subcommand("tags", "tags with finished runs, oldest first (by their latest run)");
  db_opt(tags);
  tags->add_option("--prefix", *tag_prefix, "only tags starting with this (e.g. nightly-)");
  tags->callback([o, open, tag_prefix] {
    db::ResultsDb r = open();
    std::vector<std::pair<int64_t, std::string>> latest;  // (latest finished run, tag)
    for (const auto& x : r.list_runs()) {
      if (x.status != "finished" || x.tag.empty() || x.tag.rfind(*tag_prefix, 0) != 0) continue;
      auto it = std::find_if(latest.begin(), latest.end(), [&](const auto& p) { return p.second == x.tag; });
      if (it == latest.end())
        latest.emplace_back(x.id, x.tag);
      else
        it->first = std::max(it->first, x.id);
    }
    std::sort(latest.begin(), latest.end());
    for (const auto& [id, tag] : latest) std::printf("%s\n", tag.c_str());
  });

  auto* show = cmd->add_subcommand("show", "one run: provenance, configuration, metrics");
  db_opt(show);
  show->add_option("run", o->run, "run id, latest, previous, or a tag (its latest finished run)")->required();
  show->add_flag("--json", o->json, "machine-readable output");
  show->add_flag("--items", o->items, "also per-item values (e.g. per-image PSNR)");
  show->callback([o, open] {
    db::ResultsDb r = open();
    const int64_t id = r.resolve_run(o->run);
    auto& c = r.connection();
    ojson j = query(c, "SELECT * FROM runs WHERE id = ?", id).at(0);
    auto cfg = query(c, "SELECT * FROM run_configs WHERE run_id = ?", id);
    j["config"] = cfg.empty() ? ojson(nullptr) : cfg[0];
    j["metrics"] = query(
        c,
        std::string("SELECT m.name, m.value, m.std, m.noise, m.n, m.dataset, m.item, m.feature_network, "
                    "m.weights_sha256, m.mode, m.compat, rs.path AS reference, rs.sha256 AS "
                    "reference_sha256 FROM metrics m LEFT JOIN reference_sets rs ON rs.id = "
                    "m.reference_set_id WHERE m.run_id = ?") +
            (o->items ? "" : " AND m.item IS NULL") + " ORDER BY m.id",
        id);
    j["latencies"] = query(c, "SELECT * FROM latencies WHERE run_id = ?", id);
    auto size = query(c, "SELECT * FROM model_sizes WHERE run_id = ?", id);
    if (!size.empty()) j["model_size"] = size[0];
    if (o->json) {
      std::printf("%s\n", j.dump(2).c_str());
      return;
    }
    std::printf("run %lld  %s  %s -> %s\n", static_cast<long long>(id),
                j["status"].get<std::string>().c_str(), j["started_at"].get<std::string>().c_str(),
                j["ended_at"].is_null() ? "-" : j["ended_at"].get<std::string>().c_str());
    for (const char* k : {"tag", "command_line", "git_revision", "code_version", "host", "device",
                          "libtorch_version", "error"})
      if (!j[k].is_null())
        std::printf("  %-17s %s\n", k,
                    j[k].is_string() ? j[k].get<std::string>().c_str() : j[k].dump().c_str());
    if (!j["config"].is_null())
      for (auto it = j["config"].begin(); it != j["config"].end(); ++it)
        if (!it.value().is_null() && it.key() != "run_id")
          std::printf(
              "  %-17s %s\n", it.key().c_str(),
              it.value().is_string() ? it.value().get<std::string>().c_str() : it.value().dump().c_str());
    for (const auto& m : j["metrics"]) {
      std::string v = m["value"].is_null() ? "(undefined)" : m["value"].dump();
      std::printf("  %-8s %-22s%s%s%s  n=%s  %s%s\n", m["name"].get<std::string>().c_str(), v.c_str(),
                  m["std"].is_null() ? "" : (" ± " + m["std"].dump()).c_str(),
                  m["noise"].is_null() ? "" : ("  noise " + m["noise"].dump()).c_str(),
                  m["item"].is_null() ? "" : ("  [" + m["item"].get<std::string>() + "]").c_str(),
                  m["n"].is_null() ? "-" : m["n"].dump().c_str(),
                  m["dataset"].is_null() ? "" : (m["dataset"].get<std::string>() + ", ").c_str(),
                  m["mode"].is_null() ? "" : m["mode"].get<std::string>().c_str());
    }
  });

  auto* exp = cmd->add_subcommand(
      "export", "every metric with its run and provenance (csv, json) or the whole db (sql)");
  db_opt(exp);
  exp->add_option("--format", o->format, "csv, json or sql")->check(CLI::IsMember({"csv", "json", "sql"}));
  exp->add_option("-o,--output", o->out, "output file (default: standard output)");
  exp->callback([o, open] {
    db::ResultsDb r = open();
    auto& c = r.connection();
    std::string text;
    if (o->format == "csv" || o->format == "json") {
      db::Statement s(c, kMetricsExport);
      ojson rows = ojson::array();
      std::vector<std::string> header;
      for (int i = 0; i < s.columns(); ++i) header.push_back(s.column_name(i));
      while (s.step()) rows.push_back(row_json(s));
      if (o->format == "json") {
        text = rows.dump(2) + "\n";
      } else {
        for (size_t i = 0; i < header.size(); ++i) text += (i ? "," : "") + header[i];
        text += "\n";
        for (const auto& row : rows) {
          for (size_t i = 0; i < header.size(); ++i) text += (i ? "," : "") + csv_cell(row[header[i]]);
          text += "\n";
        }
      }
    } else {
      text = "PRAGMA foreign_keys = OFF;\nBEGIN TRANSACTION;\n";
      std::vector<std::pair<std::string, std::string>> tables;
      {
        db::Statement t(c,
                        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                        "'sqlite_%' ORDER BY rowid");
        while (t.step()) tables.emplace_back(t.text(0), t.text(1));
      }
      for (const auto& [name, sql] : tables) {
        text += sql + ";\n";
        db::Statement rows(c, "SELECT * FROM \"" + name + "\"");
        while (rows.step()) {
          text += "INSERT INTO \"" + name + "\" VALUES (";
          for (int i = 0; i < rows.columns(); ++i) text += (i ? ", " : "") + sql_literal(rows, i);
          text += ");\n";
        }
      }
      db::Statement idx(
          c, "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY rowid");
      while (idx.step()) text += idx.text(0) + ";\n";
      text += "PRAGMA user_version = " + std::to_string(c.user_version()) + ";\nCOMMIT;\n";
    }
    write_output(o->out, text);
  });

  auto* gc = cmd->add_subcommand("gc", "remove the partial sample artifacts of failed or interrupted runs");
  db_opt(gc);
  gc->add_flag("--yes", o->yes, "really delete (without it, only list what would go)");
  gc->callback([o, open] {
    db::ResultsDb r = open();
    auto& c = r.connection();
    auto chunks =
        query(c,
              "SELECT sc.id, sc.run_id, sc.artifact_path FROM sample_chunks sc JOIN runs r ON r.id = "
              "sc.run_id WHERE r.status IN ('failed', 'interrupted') AND sc.artifact_path IS NOT NULL");
    int64_t bytes = 0;
    for (const auto& ch : chunks) {
      std::error_code ec;
      const std::string p = ch["artifact_path"];
      if (std::filesystem::exists(p, ec)) bytes += static_cast<int64_t>(std::filesystem::file_size(p, ec));
      std::printf("%s run %lld: %s\n", o->yes ? "removing" : "would remove",
                  static_cast<long long>(ch["run_id"].get<int64_t>()), p.c_str());
      if (o->yes) {
        std::filesystem::remove(p, ec);
        if (ec) fail("{}: cannot remove: {}", p, ec.message());
        db::Transaction t(c);
        db::Statement(c,
                      "UPDATE sample_chunks SET artifact_path = NULL, artifact_sha256 = NULL, status = "
                      "'failed', updated_at = ? WHERE id = ?")
            .bind(1, db::utc_now())
            .bind(2, ch["id"].get<int64_t>())
            .run();
        t.commit();
      }
    }
    std::printf("%zu artifact(s), %.1f MB%s\n", chunks.size(), bytes / 1e6,
                o->yes ? " removed" : "; pass --yes to remove them (finished runs are never touched)");
  });
}

}  // namespace dmeval::cli
