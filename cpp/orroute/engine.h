// The engine's public header: the Engine and its task, plan and result types (engine/engine.h),
// the streamed run for a consumer on another thread (engine/streamed_run.h), the body of one
// attempt (engine/attempt_body.h) and the default model order (engine/default_order.h).
// The implementation is one concept per file under engine/.
#pragma once

#include "orroute/engine/attempt_body.h"
#include "orroute/engine/default_order.h"
#include "orroute/engine/engine.h"
#include "orroute/engine/streamed_run.h"
