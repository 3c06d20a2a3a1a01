// Finding and naming the optional libraries the addon loads at run time (CUDA backend, MPI
// transport): where the package root is relative to the addon, and the file checks and dlerror
// text both loaders report.
#pragma once
#include <string>
#include <vector>

namespace moecap {

// True for an existing regular file.
bool regular_file_exists(const std::string& path);

// Where a library built beside the package lands: <root>/<build_dir>/<file> (the addon sits in
// <root>/build/Release or <root>/prebuilds/<platform>/), then the addon's own folder. Empty when the
// addon's path is unknown.
std::vector<std::string> package_library_candidates(const std::vector<std::string>& build_dirs,
                                                    const std::string& file);

// The first line of a dlerror()/version text (they can run to several lines).
std::string first_line(const char* text);

}  // namespace moecap
