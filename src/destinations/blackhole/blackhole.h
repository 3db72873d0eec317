// blackhole: accepts every event and counts it; sends nothing. For benchmarks and for
// checking routing. In-process (no HTTP).
#pragma once

#include "delivery/destination.h"

namespace sy::destinations {

delivery::DestinationType BlackholeType();

}  // namespace sy::destinations
