"""`cmake --install` and what another project does with the result: the installed tool runs, a
CMake project built with find_package(edgelm) + edgelm::edgelm completes a prompt exactly as
`edgelm run` does, and pkg-config gives the flags that build the same program."""
import os
import shutil
import subprocess
import tempfile

from harness import BIN, SRC, check, edgelm, run_all

BUILD = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(BIN))))  # <build>/src/cli/edgelm
PREFIX = tempfile.mkdtemp(prefix="edgelm-prefix-")
PROMPT, N = "The capital of France is", "8"


def sh(*args, env=None):
    r = subprocess.run(list(args), capture_output=True, text=True, env={**os.environ, **(env or {})})
    check(r.returncode == 0, f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def installed():
    if not os.path.exists(os.path.join(PREFIX, "bin", "edgelm")):
        sh("cmake", "--install", BUILD, "--prefix", PREFIX)
    return PREFIX


def expected():
    r = edgelm("run", "-m", "smollm2", "-p", PROMPT, "-n", N, "--temp", "0", "-t", "2", "-c", "512")
    check(r.returncode == 0, r.stderr)
    return r.stdout


def test_install_puts_tool_library_headers_and_package_files_in_place():
    p = installed()
    for rel in ("bin/edgelm", "include/edgelm/session.hpp", "include/edgelm/anomaly/detector.hpp",
                "lib/libedgelm_kernels.a", "lib/libedgelm_server.a", "lib/cmake/edgelm/edgelmConfig.cmake",
                "lib/cmake/edgelm/edgelmConfigVersion.cmake", "lib/cmake/edgelm/edgelmTargets.cmake",
                "lib/pkgconfig/edgelm.pc"):
        check(os.path.exists(os.path.join(p, rel)), f"{rel} is not installed")
    r = subprocess.run([os.path.join(p, "bin", "edgelm"), "--version"], capture_output=True, text=True)
    check(r.returncode == 0 and r.stdout.startswith("edgelm "), r.stdout + r.stderr)
    r = subprocess.run([os.path.join(p, "bin", "edgelm"), "run", "-m", "smollm2", "-p", PROMPT, "-n", N,
                        "--temp", "0", "-t", "2", "-c", "512"], capture_output=True, text=True)
    check(r.returncode == 0 and r.stdout == expected(), f"the installed tool differs: {r.stdout!r} {r.stderr!r}")


def test_a_cmake_project_links_the_installed_package():
    p = installed()
    build = tempfile.mkdtemp(prefix="edgelm-example-")
    try:
        sh("cmake", "-S", os.path.join(SRC, "examples", "complete"), "-B", build, f"-DCMAKE_PREFIX_PATH={p}",
           "-DCMAKE_BUILD_TYPE=Release")
        sh("cmake", "--build", build)
        r = sh(os.path.join(build, "complete"), "smollm2", PROMPT, N)
        check(r.stdout == expected(), f"example {r.stdout!r} vs edgelm run {expected()!r}")
        r = subprocess.run([os.path.join(build, "complete"), "no-such-model", "x"], capture_output=True, text=True)
        check(r.returncode == 1 and r.stderr.startswith("error: ") and "no-such-model" in r.stderr, r.stderr)
    finally:
        shutil.rmtree(build, ignore_errors=True)


def test_pkg_config_flags_build_the_same_program():
    p = installed()
    env = {"PKG_CONFIG_PATH": os.path.join(p, "lib", "pkgconfig")}
    flags = sh("pkg-config", "--cflags", "--libs", "edgelm", env=env).stdout.split()
    includes = [os.path.realpath(f[2:]) for f in flags if f.startswith("-I")]
    check(os.path.realpath(os.path.join(p, "include")) in includes and "-ledgelm_kernels" in flags,
          f"pkg-config flags {flags}")
    out = os.path.join(tempfile.mkdtemp(prefix="edgelm-pc-"), "complete")
    sh("g++", "-std=c++20", "-O2", os.path.join(SRC, "examples", "complete", "complete.cpp"), *flags, "-o", out)
    r = sh(out, "smollm2", PROMPT, N)
    check(r.stdout == expected(), f"pkg-config build {r.stdout!r}")


if __name__ == "__main__":
    try:
        run_all(globals())
    finally:
        shutil.rmtree(PREFIX, ignore_errors=True)
