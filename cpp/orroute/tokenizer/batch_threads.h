// The helper threads of the batch calls (encode_batch, encode_batch_flat, count_batch): kept for
// the process, because a batch of 0.4 MB takes ~4 ms and starting a thread per call (its stack,
// its piece cache fetched from the pool, the vocabulary's lines cold on that core) cost ~10% of
// its CPU time.
//
// Their lifecycle is safe: they are joined at exit (and by stop_batch_helpers); a fork() never
// catches their lock held (pthread_atfork takes it first), and a forked child, where they do not
// exist, forgets them and starts its own on its first batch.
#pragma once

#include <cstddef>
#include <functional>

namespace orroute {

// Runs unit(i) once for every i in [0, n), on the calling thread and at the same time on up to
// `helpers` helper threads (fewer if threads cannot be started); returns once every unit has run.
// The caller takes units until none are left and never waits for a helper that has not started
// (it withdraws those); a helper also stops taking units once the helpers are being stopped
// (stop_batch_helpers, at exit), so stopping waits for at most the unit each helper is in, and
// the caller runs the rest. `unit` must not throw.
void run_units(size_t n, unsigned helpers, const std::function<void(size_t)>& unit);

// Number of helper threads alive now.
unsigned batch_helper_count();

// Stops the helper threads and joins them (each finishes the unit it is in first: a batch running
// on another thread, e.g. a daemon thread at interpreter exit, does not hold the exit up for the
// rest of its units); the next batch call starts new ones. Runs at exit.
void stop_batch_helpers();

}  // namespace orroute
