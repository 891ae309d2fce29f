"""Why a lidar profile does not become a sample: every reason, in the order the rules apply.

Each dropped profile is counted once, under the first rule it fails. A profile that passes
the lidar filters is 'kept'; a kept profile becomes a sample unless a later rule drops it.
"""

FILTERS = {
    "no_base": "no valid layer base (every layer is the fill value or non-finite)",
    "not_ocean": "not over the ocean: DEM surface != 0, or |lidar surface| above the ocean limit (0.9 km)",
    "out_of_range": "the lowest layer base lies outside --cbh-range",
    "multi_layer": "more than one layer (only with --single-layer)",
}
MATCHING = {
    "no_frame": "no camera frame within --time-tolerance of the profile",
    "same_frame": "another kept profile is closer in time to the same frame",
    "window_edge": "the T-frame window around the frame leaves the camera file",
    "window_gap": "the window spans a time gap between frames",
    "no_solar": "no usable solar angles at the frame time",
    "bad_pixels": "a frame of the window holds non-finite pixels",
}
REASONS = {**FILTERS, **MATCHING}
