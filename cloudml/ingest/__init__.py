"""Raw ER-2 flights (camera, lidar, navigation files) -> the unified HDF5 file that cloudml trains on.

`python -m cloudml.ingest OUT.h5 FLIGHT_DIR ...` (docs/er2.md). The steps, one module each:
`rawfiles` (find, open, check), `camera`, `lidar` + `lidartime`, `solar`, `matching`,
`windows`, `reduce`, `plan` (one flight, no pixels), `writer`, `report`, `pipeline`, `cli`.
"""
