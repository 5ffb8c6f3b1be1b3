#pragma once

// Internal: gathers small statements of concurrent callers into few calls (used by pg_limit_batch for the limiter
// writes and by pg_subject_facts_source for the combined reads). Callers submit items; the items of one turn share a
// call, and while `max_in_flight` calls are in flight the next call keeps taking items until one finishes. The owner
// supplies how a call's items become one statement and where each item's answer is in its rows.

#include <preflight/clients/pg_gather_options.hpp>
#include <preflight/clients/pg_pool.hpp>
#include <preflight/core/errc.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace preflight::clients::detail {

/// A call's rows, shared by its items.
using shared_rows = std::shared_ptr<const pg_rows>;

/// One item: its kind (a call holds up to `max_per_call` items of each kind), its parameters (params[0] is its key
/// when keys must be distinct within a kind).
struct gather_item {
    std::size_t kind = 0;
    std::vector<std::string> params;
};

/// The live items of a call, per kind, in the order the statement lists them.
using gather_lists = std::vector<std::vector<const gather_item*>>;

/// How the owner turns a call into a statement.
struct gather_spec {
    std::size_t kinds = 1;
    bool distinct_keys = false;  ///< never two items of a kind with the same params[0] in one call
    /// When set, never two items of a kind for which it holds in one call (for items with several keys; checked
    /// besides `distinct_keys`).
    std::function<bool(const gather_item&, const gather_item&)> conflict;
    /// An item submitted with no sign of load (no call of this gathering in flight, no statement on the pool, and the
    /// last call sent carried one item) is sent at once as a call of its own, without waiting for the end of its
    /// caller's turn (for items that have no partner in that turn: the turn's remaining work would delay them).
    /// Otherwise it gathers as usual.
    bool at_once = false;
    /// When set, a call of more than one item of a kind lists each kind's items in this order.
    std::function<bool(const gather_item&, const gather_item&)> less;
    /// The statement and parameters of a call of these items (a single item per kind at most, or more).
    std::function<std::pair<pg_statement, std::vector<std::string>>(const gather_lists&)> build;
    /// Where each item's answer is: the row of each item, per kind and in list order; `errc::protocol_error` when the
    /// rows are not what the statement returns.
    std::function<result<std::vector<std::vector<std::size_t>>>(const gather_lists&, const pg_rows&)> locate;
    /// A failed call of several items that is retried one item at a time (each alone, in order) so that a bad item
    /// fails by itself: true for errors that leave nothing applied and may be one item's fault.
    std::function<bool(boost::system::error_code)> retry_alone;
};

struct gather_state;

/// The gathering machinery; destroying it fails items whose call was not sent yet with `errc::cancelled`.
class gatherer {
public:
    /// Throws `std::invalid_argument` when an option is 0.
    gatherer(pg_pool& pool, gather_spec spec, pg_gather_options options);
    ~gatherer();
    gatherer(const gatherer&) = delete;
    gatherer& operator=(const gatherer&) = delete;

    /// Adds an item to the call taking items; resumes with the call's rows and the item's row. Cancellation
    /// (terminal, partial, total): before its call is sent the item is dropped; after, its result is discarded.
    boost::asio::awaitable<result<std::pair<shared_rows, std::size_t>>> submit(gather_item item);

    [[nodiscard]] pg_gather_stats stats() const;

private:
    std::shared_ptr<gather_state> state_;
};

/// A Postgres array literal of text elements, each quoted (backslash before `"` and `\`), so any text survives.
std::string text_array_literal(const std::vector<std::string>& items);

/// A Postgres array literal of elements that need no quoting (numbers, booleans, in the text the server parses).
std::string plain_array_literal(const std::vector<std::string>& items);

}  // namespace preflight::clients::detail
