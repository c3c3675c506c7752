#include "faultline/core/scan/scan.hpp"

#include "faultline/core/decode/gzip.hpp"

#include <simdjson.h>
#include <zlib.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <span>
#include <unordered_map>

namespace faultline::core::scan {

std::optional<input_format> parse_format(std::string_view s) {
    if (s == "auto") return input_format::automatic;
    if (s == "jsonl") return input_format::jsonl;
    if (s == "firehose") return input_format::firehose;
    if (s == "lines") return input_format::lines;
    return std::nullopt;
}

namespace {

using decode::json_padding;

/// A growable byte buffer with json_padding spare bytes after its capacity.
struct buffer {
    std::unique_ptr<char[]> data;
    std::size_t capacity = 0;
    std::size_t size = 0;

    void reserve(std::size_t n) {
        if (n <= capacity) return;
        auto bigger = std::make_unique_for_overwrite<char[]>(n + json_padding);
        if (size) std::memcpy(bigger.get(), data.get(), size);
        data = std::move(bigger);
        capacity = n;
    }
};

/// Sequential bytes of one input: a file or stdin, gunzipped on the fly when it starts with the
/// gzip magic (zlib, streaming, every member).
class byte_source {
public:
    static result<std::unique_ptr<byte_source>> open(const std::string& path) {
        auto s = std::unique_ptr<byte_source>(new byte_source(path));
        if (path == "-")
            s->fd_ = STDIN_FILENO;
        else {
            s->fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
            if (s->fd_ < 0) return make_error(errc::io, path + ": cannot open: " + std::strerror(errno));
            s->owns_fd_ = true;
            struct stat st {};
            if (::fstat(s->fd_, &st) == 0 && S_ISREG(st.st_mode))
                s->size_ = static_cast<std::uint64_t>(st.st_size);
        }
        // Peek at the first bytes to detect gzip.
        auto r = s->raw_read(s->peek_, sizeof s->peek_);
        if (!r) return r.error();
        s->peek_len_ = *r;
        if (s->peek_len_ >= 2 && decode::looks_gzipped(std::string_view(s->peek_, s->peek_len_))) {
            s->gz_ = true;
            s->zin_ = std::make_unique_for_overwrite<char[]>(zin_size);
            std::memcpy(s->zin_.get(), s->peek_, s->peek_len_);
            s->zs_.next_in = reinterpret_cast<Bytef*>(s->zin_.get());
            s->zs_.avail_in = static_cast<uInt>(s->peek_len_);
            s->peek_len_ = 0;
            if (inflateInit2(&s->zs_, 15 + 16) != Z_OK)
                return make_error(errc::io, path + ": zlib init failed");
            s->z_init_ = true;
        }
        return s;
    }

    ~byte_source() {
        if (z_init_) inflateEnd(&zs_);
        if (owns_fd_) ::close(fd_);
    }

    /// Reads up to n bytes; 0 means end of input.
    result<std::size_t> read(char* out, std::size_t n) {
        if (!gz_) {
            if (peek_len_) {
                const std::size_t k = std::min(n, peek_len_);
                std::memcpy(out, peek_, k);
                std::memmove(peek_, peek_ + k, peek_len_ - k);
                peek_len_ -= k;
                return k;
            }
            return raw_read(out, n);
        }
        return gz_read(out, n);
    }

    const std::string& path() const { return path_; }

private:
    static constexpr std::size_t zin_size = 256 << 10;

public:
    std::uint64_t raw_bytes() const noexcept { return raw_bytes_; }
    std::uint64_t size() const noexcept { return size_; }

private:
    std::uint64_t raw_bytes_ = 0;
    std::uint64_t size_ = 0;

    explicit byte_source(std::string path)
        : path_(std::move(path)) {
        std::memset(&zs_, 0, sizeof zs_);
    }

    result<std::size_t> raw_read(char* out, std::size_t n) {
        for (;;) {
            const ssize_t got = ::read(fd_, out, n);
            if (got > 0) raw_bytes_ += static_cast<std::uint64_t>(got);
            if (got >= 0) return static_cast<std::size_t>(got);
            if (errno == EINTR) continue;
            return make_error(errc::io, path_ + ": read error: " + std::strerror(errno));
        }
    }

    result<std::size_t> gz_read(char* out, std::size_t n) {
        zs_.next_out = reinterpret_cast<Bytef*>(out);
        zs_.avail_out = static_cast<uInt>(std::min<std::size_t>(n, 1u << 30));
        while (zs_.avail_out == static_cast<uInt>(std::min<std::size_t>(n, 1u << 30))) {
            if (zs_.avail_in == 0 && !eof_) {
                auto r = raw_read(zin_.get(), zin_size);
                if (!r) return r.error();
                if (*r == 0) eof_ = true;
                zs_.next_in = reinterpret_cast<Bytef*>(zin_.get());
                zs_.avail_in = static_cast<uInt>(*r);
            }
            if (zs_.avail_in == 0 && eof_) {
                if (in_member_) return make_error(errc::gzip, path_ + ": truncated gzip data");
                break;
            }
            if (!in_member_) {
                // A new member must start with the magic; anything else is trailing garbage.
                if (zs_.avail_in >= 1 && zs_.next_in[0] != 0x1f)
                    return make_error(errc::gzip, path_ + ": trailing garbage after gzip data (offset " +
                                                      std::to_string(zs_.total_in) + ")");
                in_member_ = true;
            }
            const int rc = inflate(&zs_, Z_NO_FLUSH);
            if (rc == Z_STREAM_END) {
                in_member_ = false;
                inflateReset(&zs_);
                continue;
            }
            if (rc == Z_BUF_ERROR && zs_.avail_in == 0) continue; // needs more input
            if (rc != Z_OK)
                return make_error(errc::gzip, path_ + ": corrupt gzip data: " +
                                                  (zs_.msg ? zs_.msg : "error " + std::to_string(rc)));
        }
        return static_cast<std::size_t>(out ? reinterpret_cast<char*>(zs_.next_out) - out : 0);
    }

    std::string path_;
    int fd_ = -1;
    bool owns_fd_ = false;
    char peek_[2];
    std::size_t peek_len_ = 0;
    bool gz_ = false, z_init_ = false, eof_ = false, in_member_ = false;
    z_stream zs_;
    std::unique_ptr<char[]> zin_;
};

/// Shared by the reader and the chunk jobs of one scan.
struct scan_state {
    explicit scan_state(std::size_t buffers)
        : pool_size(buffers) {}

    std::size_t pool_size;
    std::mutex mutex;
    std::condition_variable returned;
    std::vector<std::unique_ptr<buffer>> free; // buffers not in use
    std::vector<std::size_t> lines_in_chunk;   // by chunk sequence number
    struct failure {
        std::size_t chunk;
        std::size_t line_in_chunk;
        error err;
    };
    std::optional<failure> first_failure;
    std::atomic<bool> failed{false};
    std::atomic<std::uint64_t> events{0}; // counted so far (progress reports)

    std::unique_ptr<buffer> acquire() {
        std::unique_lock lock(mutex);
        returned.wait(lock, [&] { return !free.empty(); });
        auto b = std::move(free.back());
        free.pop_back();
        return b;
    }
    void release(std::unique_ptr<buffer> b) {
        {
            std::lock_guard lock(mutex);
            free.push_back(std::move(b));
        }
        returned.notify_all();
    }
    void wait_all_returned() {
        std::unique_lock lock(mutex);
        returned.wait(lock, [&] { return free.size() == pool_size; });
    }
    void fail(std::size_t chunk, std::size_t line, error e) {
        std::lock_guard lock(mutex);
        if (!first_failure || chunk < first_failure->chunk ||
            (chunk == first_failure->chunk && line < first_failure->line_in_chunk))
            first_failure = failure{chunk, line, std::move(e)};
        failed.store(true, std::memory_order_release);
    }
};

/// In jsonl input, a line starting with one of these continues the document of the lines before
/// it (a pretty-printed document: indented members, closing brackets, blank lines); any other
/// line starts a new one. JSON Lines input (one document per line) is unaffected.
constexpr bool continues_document(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '}' || c == ']';
}

class chunk_job final : public pipeline::job {
public:
    chunk_job(scan_state& state, std::unique_ptr<buffer> buf, std::size_t seq, input_format format,
              std::string group)
        : state_(state)
        , buf_(std::move(buf))
        , seq_(seq)
        , format_(format)
        , group_(std::move(group)) {}

    void run(pipeline::worker_context& ctx) noexcept override {
        std::size_t line_no = 0;
        try {
            process(ctx, line_no);
        } catch (const std::exception& e) {
            state_.fail(seq_, line_no, make_error(errc::io, std::string("internal error: ") + e.what()));
        }
        {
            std::lock_guard lock(state_.mutex);
            state_.lines_in_chunk[seq_] = line_no;
        }
        state_.release(std::move(buf_));
    }

private:
    void process(pipeline::worker_context& ctx, std::size_t& line_no) {
        std::string_view data(buf_->data.get(), buf_->size);
        auto& sink = ctx.begin_batch();
        if (format_ == input_format::lines) {
            line_no = static_cast<std::size_t>(std::count(data.begin(), data.end(), '\n'));
            decode::decoder::lines(data, group_, sink);
            state_.events.fetch_add(ctx.batch.events, std::memory_order_relaxed);
            ctx.commit_batch();
            return;
        }
        const decode::firehose_options fo{false, decode::record_format::cloudwatch, group_};
        while (!data.empty()) {
            std::size_t nl = data.find('\n');
            std::string_view line = data.substr(0, nl);
            const std::size_t first_line = ++line_no;
            if (line.find_first_not_of(" \t\r") == std::string_view::npos) {
                data = nl == std::string_view::npos ? std::string_view{} : data.substr(nl + 1);
                continue;
            }
            if (format_ == input_format::jsonl) {
                // A document may span lines (pretty-printed, as /v1/cloudwatch accepts it): the
                // lines that continue it (indented, or closing brackets) belong to it.
                while (nl != std::string_view::npos && nl + 1 < data.size() &&
                       continues_document(data[nl + 1])) {
                    nl = data.find('\n', nl + 1);
                    ++line_no;
                }
                line = data.substr(0, nl);
            }
            data = nl == std::string_view::npos ? std::string_view{} : data.substr(nl + 1);
            if (format_ == input_format::jsonl) {
                auto r = ctx.decoder.cloudwatch(line, sink);
                if (!r) return state_.fail(seq_, first_line, r.error());
            } else {
                auto r = ctx.decoder.firehose(line, sink, fo);
                if (!r) return state_.fail(seq_, line_no, r.error());
            }
        }
        state_.events.fetch_add(ctx.batch.events, std::memory_order_relaxed);
        ctx.commit_batch();
    }

    scan_state& state_;
    std::unique_ptr<buffer> buf_;
    std::size_t seq_;
    input_format format_;
    std::string group_;
};

/// Writes `path` from the per-event template keys in `keys` (see scan_options::assignments).
result<void> write_assignments(std::FILE* keys, const mine::template_miner& miner,
                               std::unordered_map<std::uint64_t, std::string>& texts,
                               const std::string& path) {
    miner.for_each_key([&](std::uint64_t key, const std::string& text) { texts[key] = text; });
    std::unordered_map<std::uint64_t, std::string> lines; // key -> "id\ttemplate\n"
    lines.reserve(texts.size());
    for (auto& [key, text] : texts)
        lines.emplace(key, aggregate::template_id(text) + '\t' + text + '\n');
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> out(std::fopen(path.c_str(), "wb"), &std::fclose);
    if (!out) return make_error(errc::io, path + ": " + std::strerror(errno));
    std::rewind(keys);
    std::vector<std::uint64_t> block(8192);
    static const std::string none = "-\t\n";
    for (;;) {
        const std::size_t n = std::fread(block.data(), sizeof(std::uint64_t), block.size(), keys);
        for (std::size_t i = 0; i < n; ++i) {
            const auto it = block[i] ? lines.find(block[i]) : lines.end();
            const std::string& line = it == lines.end() ? none : it->second;
            std::fwrite(line.data(), 1, line.size(), out.get());
        }
        if (n < block.size()) break;
    }
    if (std::ferror(keys)) return make_error(errc::io, "cannot read the temporary file of --assignments");
    if (std::fflush(out.get()) != 0 || std::ferror(out.get()))
        return make_error(errc::io, path + ": " + std::strerror(errno));
    return {};
}

enum class detection { jsonl, firehose, lines, blank, need_more };

/// Decides jsonl / firehose / lines from the first non-blank line of an input. `blank`: every
/// line seen is blank (decide later); `need_more`: the first non-blank line is not complete yet.
detection detect_format(std::string_view data, bool eof) {
    while (!data.empty()) {
        const std::size_t nl = data.find('\n');
        std::string_view line = data.substr(0, nl);
        data = nl == std::string_view::npos ? std::string_view{} : data.substr(nl + 1);
        const std::size_t start = line.find_first_not_of(" \t\r");
        if (start == std::string_view::npos) continue;
        if (nl == std::string_view::npos && !eof) return detection::need_more;
        if (line[start] != '{') return detection::lines;
        simdjson::padded_string copy(line);
        simdjson::ondemand::parser parser;
        simdjson::ondemand::document doc;
        simdjson::ondemand::object obj;
        if (parser.iterate(copy).get(doc) || doc.get_object().get(obj)) return detection::jsonl;
        if (obj.find_field_unordered("records").error() == simdjson::SUCCESS) return detection::firehose;
        return detection::jsonl;
    }
    return detection::blank;
}

} // namespace

result<aggregate::counts> run(std::shared_ptr<const match::pattern_set> patterns,
                              const scan_options& options) {
    pipeline::pipeline_options po;
    po.workers = options.threads;
    po.limits = options.limits;
    po.analyze = options.analyze;
    po.analyze.template_details = false; // the report needs only the counts
    po.share_templates = true;           // and each template once, not once per worker
    if (options.mining) {
        po.mining = options.mining;
        po.mining->warmup_ms = 0;   // offline: no template is "new"
        po.share_templates = false; // the miner holds the templates
    }
    // --assignments: one worker, so that batches are mined (and their keys written) in input order.
    std::FILE* keys = nullptr;
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> keys_owner(nullptr, &std::fclose);
    bool keys_failed = false;
    if (!options.assignments.empty()) {
        if (!options.mining) return make_error(errc::internal, "assignments need mining");
        keys_owner.reset(keys = std::tmpfile());
        if (!keys)
            return make_error(errc::io,
                              std::string("cannot create a temporary file: ") + std::strerror(errno));
        po.workers = 1;
        po.on_assignments = [&](std::span<const std::uint64_t> batch) {
            if (!batch.empty() &&
                std::fwrite(batch.data(), sizeof(std::uint64_t), batch.size(), keys) != batch.size())
                keys_failed = true;
        };
    }
    std::size_t workers = po.workers ? po.workers : std::max(1u, std::thread::hardware_concurrency());
    // Two buffers per worker plus two for the reader bound the memory: never more in flight.
    const std::size_t pool = 2 * workers + 2;
    po.queue_capacity = pool;
    pipeline::pipeline pipe(std::move(patterns), po);
    std::unordered_map<std::uint64_t, std::string> evicted; // --assignments: templates the cap dropped
    if (keys)
        pipe.miner()->on_evict([&](std::uint64_t key, const std::string& text) { evicted[key] = text; });
    scan_state state(pool);
    for (std::size_t i = 0; i < pool; ++i) {
        auto b = std::make_unique<buffer>();
        b->reserve(options.chunk_bytes);
        state.free.push_back(std::move(b));
    }

    std::size_t seq = 0;
    std::vector<std::pair<std::string, std::size_t>> file_first_chunk; // (path, first chunk seq)
    std::optional<error> read_error;
    auto submit = [&](std::unique_ptr<buffer> b, input_format f, const std::string& group) {
        {
            std::lock_guard lock(state.mutex);
            state.lines_in_chunk.push_back(0);
        }
        pipe.submit(std::make_unique<chunk_job>(state, std::move(b), seq++, f, group));
    };

    // The line that does not fit starts the current buffer: report it as the first line of the
    // chunk it would have been (the lines of every earlier chunk are counted by then).
    auto fail_long_line = [&] {
        state.fail(seq, 1,
                   make_error(errc::too_large, "a line is longer than the limit of " +
                                                   std::to_string(options.max_line_bytes) + " bytes"));
    };

    std::uint64_t bytes_before = 0; // of the inputs done
    for (std::size_t index = 0; index < options.inputs.size(); ++index) {
        const auto& path = options.inputs[index];
        if (state.failed.load(std::memory_order_acquire)) break;
        auto src = byte_source::open(path);
        if (!src) {
            read_error = src.error();
            break;
        }
        file_first_chunk.emplace_back(path, seq);
        const std::string group = path == "-" ? std::string("stdin") : path;
        input_format format = options.format;
        auto cur = state.acquire();
        cur->size = 0;
        bool eof = false;
        while (!eof && !state.failed.load(std::memory_order_acquire)) {
            // Fill the buffer.
            while (cur->size < cur->capacity) {
                auto got = (*src)->read(cur->data.get() + cur->size, cur->capacity - cur->size);
                if (!got) {
                    read_error = got.error();
                    break;
                }
                if (*got == 0) {
                    eof = true;
                    break;
                }
                cur->size += *got;
            }
            if (read_error) break;
            std::string_view data(cur->data.get(), cur->size);
            input_format chunk_format = format;
            if (format == input_format::automatic) {
                const detection d = detect_format(data, eof);
                if (d == detection::need_more) {
                    if (cur->capacity >= options.max_line_bytes) {
                        fail_long_line();
                        break;
                    }
                    cur->reserve(std::min(options.max_line_bytes, cur->capacity * 2));
                    continue;
                }
                // Blank lines are skipped in every format: such a chunk goes as jsonl, and the
                // decision waits for the first line with content.
                chunk_format = d == detection::firehose ? input_format::firehose
                               : d == detection::lines  ? input_format::lines
                                                        : input_format::jsonl;
                if (d != detection::blank) format = chunk_format;
            }
            std::size_t cut = data.size();
            if (!eof) {
                std::size_t nl = data.rfind('\n');
                // jsonl: never inside a document spanning lines (cut before a line that starts one;
                // after the buffer's last newline the next byte is unknown: it may continue).
                while (chunk_format == input_format::jsonl && nl != std::string_view::npos &&
                       (nl + 1 == data.size() || continues_document(data[nl + 1])))
                    nl = nl == 0 ? std::string_view::npos : data.rfind('\n', nl - 1);
                if (nl == std::string_view::npos) {
                    if (cur->capacity >= options.max_line_bytes) {
                        fail_long_line();
                        break;
                    }
                    cur->reserve(std::min(options.max_line_bytes, cur->capacity * 2));
                    continue;
                }
                cut = nl + 1;
            }
            auto next = state.acquire();
            next->size = 0;
            if (cut < cur->size) {
                next->reserve(std::max(next->capacity, cur->size - cut));
                std::memcpy(next->data.get(), cur->data.get() + cut, cur->size - cut);
                next->size = cur->size - cut;
            }
            cur->size = cut;
            if (cut)
                submit(std::move(cur), chunk_format, group);
            else
                state.release(std::move(cur));
            cur = std::move(next);
            if (options.on_progress)
                options.on_progress({path, index, options.inputs.size(), (*src)->raw_bytes(), (*src)->size(),
                                     bytes_before + (*src)->raw_bytes(),
                                     state.events.load(std::memory_order_relaxed)});
        }
        bytes_before += (*src)->raw_bytes();
        state.release(std::move(cur));
        if (read_error) break;
    }

    state.wait_all_returned();
    pipe.stop();
    if (state.first_failure) {
        const auto& f = *state.first_failure;
        // Which file holds the chunk, and the absolute line number.
        std::size_t k = 0;
        while (k + 1 < file_first_chunk.size() && file_first_chunk[k + 1].second <= f.chunk)
            ++k;
        std::size_t line = f.line_in_chunk;
        for (std::size_t c = file_first_chunk[k].second; c < f.chunk; ++c)
            line += state.lines_in_chunk[c];
        return make_error(f.err.code,
                          file_first_chunk[k].first + ":" + std::to_string(line) + ": " + f.err.message);
    }
    if (read_error) return *read_error;
    if (keys) {
        if (keys_failed || std::fflush(keys) != 0)
            return make_error(errc::io, "cannot write the temporary file of --assignments");
        if (auto w = write_assignments(keys, *pipe.miner(), evicted, options.assignments); !w)
            return w.error();
    }
    return pipe.take_totals();
}

} // namespace faultline::core::scan
