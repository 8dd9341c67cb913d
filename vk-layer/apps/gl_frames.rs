//! `agx-gl-frames`: a small OpenGL program for the layer's tests and benchmark. It opens a
//! double-buffered GLX window on `$DISPLAY` (Xvfb in the tests; zink on lavapipe with
//! `MESA_LOADER_DRIVER_OVERRIDE=zink LIBGL_ALWAYS_SOFTWARE=1`), draws deterministic frames
//! (a clear, depth-tested triangles, a blended quad, a textured quad) and either reads every frame back with `glReadPixels` and prints
//! its hash (`--mode hash`), or prints its frame rate (`--mode fps`).
//!
//! libGL and libX11 are opened at run time (`dlopen`), so building needs no GL headers.
//!
//! ```text
//! agx-gl-frames [--frames N] [--size PIXELS] [--mode hash|fps] [--seconds S] [--upload BOOL]
//! ```
//!
//! `--upload true` re-uploads part of the texture every frame (`glTexSubImage2D`) before
//! drawing with it, as many GL programs do; zink then writes and samples the texture in one
//! submission, which the layer cannot replay (see BENCHMARKS.md).
//!
//! ```text
//! ```

use std::ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_void, CStr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const GL_COLOR_BUFFER_BIT: c_uint = 0x4000;
const GL_DEPTH_BUFFER_BIT: c_uint = 0x0100;
const GL_DEPTH_TEST: c_uint = 0x0B71;
const GL_BLEND: c_uint = 0x0BE2;
const GL_TEXTURE_2D: c_uint = 0x0DE1;
const GL_TRIANGLES: c_uint = 0x0004;
const GL_QUADS: c_uint = 0x0007;
const GL_SRC_ALPHA: c_uint = 0x0302;
const GL_ONE_MINUS_SRC_ALPHA: c_uint = 0x0303;
const GL_RGBA: c_uint = 0x1908;
const GL_UNSIGNED_BYTE: c_uint = 0x1401;
const GL_TEXTURE_MIN_FILTER: c_uint = 0x2801;
const GL_TEXTURE_MAG_FILTER: c_uint = 0x2800;
const GL_NEAREST: c_int = 0x2600;
const GL_PACK_ALIGNMENT: c_uint = 0x0D05;
const GL_RENDERER: c_uint = 0x1F01;

const GLX_RGBA: c_int = 4;
const GLX_DOUBLEBUFFER: c_int = 5;
const GLX_RED_SIZE: c_int = 8;
const GLX_GREEN_SIZE: c_int = 9;
const GLX_BLUE_SIZE: c_int = 10;
const GLX_DEPTH_SIZE: c_int = 12;

const CW_BORDER_PIXEL: c_ulong = 1 << 3;
const CW_EVENT_MASK: c_ulong = 1 << 11;
const CW_COLORMAP: c_ulong = 1 << 13;
const INPUT_OUTPUT: c_uint = 1;
const ALLOC_NONE: c_int = 0;

#[repr(C)]
struct XVisualInfo {
    visual: *mut c_void,
    visualid: c_ulong,
    screen: c_int,
    depth: c_int,
    class: c_int,
    red_mask: c_ulong,
    green_mask: c_ulong,
    blue_mask: c_ulong,
    colormap_size: c_int,
    bits_per_rgb: c_int,
}

#[repr(C)]
#[derive(Default)]
struct XSetWindowAttributes {
    background_pixmap: c_ulong,
    background_pixel: c_ulong,
    border_pixmap: c_ulong,
    border_pixel: c_ulong,
    bit_gravity: c_int,
    win_gravity: c_int,
    backing_store: c_int,
    backing_planes: c_ulong,
    backing_pixel: c_ulong,
    save_under: c_int,
    event_mask: c_long,
    do_not_propagate_mask: c_long,
    override_redirect: c_int,
    colormap: c_ulong,
    cursor: c_ulong,
}

/// A library opened with `dlopen`.
struct Lib(*mut c_void);

impl Lib {
    fn open(name: &CStr) -> Result<Lib, String> {
        // SAFETY: dlopen with a NUL-terminated name.
        let h = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
        if h.is_null() {
            return Err(format!("cannot open {name:?}"));
        }
        Ok(Lib(h))
    }

    /// The symbol `name` as a function pointer of type `T`.
    ///
    /// # Safety
    /// `T` must be the symbol's C function pointer type.
    unsafe fn sym<T: Copy>(&self, name: &CStr) -> Result<T, String> {
        // SAFETY: a handle from dlopen and a NUL-terminated name.
        let p = unsafe { libc::dlsym(self.0, name.as_ptr()) };
        if p.is_null() {
            return Err(format!("missing symbol {name:?}"));
        }
        assert_eq!(std::mem::size_of::<T>(), std::mem::size_of::<*mut c_void>());
        // SAFETY: `T` is the symbol's function pointer type (caller).
        Ok(unsafe { std::mem::transmute_copy(&p) })
    }
}

macro_rules! api {
    ($name:ident { $($f:ident : fn($($a:ty),*) $(-> $r:ty)? = $sym:literal;)* }) => {
        struct $name { $($f: unsafe extern "C" fn($($a),*) $(-> $r)?,)* }
        impl $name {
            fn load(lib: &Lib) -> Result<Self, String> {
                // SAFETY: each symbol has the C signature written beside it.
                unsafe { Ok(Self { $($f: lib.sym($sym)?,)* }) }
            }
        }
    };
}

api!(X11 {
    open_display: fn(*const c_char) -> *mut c_void = c"XOpenDisplay";
    default_screen: fn(*mut c_void) -> c_int = c"XDefaultScreen";
    root_window: fn(*mut c_void, c_int) -> c_ulong = c"XRootWindow";
    create_colormap: fn(*mut c_void, c_ulong, *mut c_void, c_int) -> c_ulong = c"XCreateColormap";
    create_window: fn(*mut c_void, c_ulong, c_int, c_int, c_uint, c_uint, c_uint, c_int, c_uint,
        *mut c_void, c_ulong, *mut XSetWindowAttributes) -> c_ulong = c"XCreateWindow";
    map_window: fn(*mut c_void, c_ulong) -> c_int = c"XMapWindow";
    sync: fn(*mut c_void, c_int) -> c_int = c"XSync";
    destroy_window: fn(*mut c_void, c_ulong) -> c_int = c"XDestroyWindow";
    close_display: fn(*mut c_void) -> c_int = c"XCloseDisplay";
});

api!(Gl {
    choose_visual: fn(*mut c_void, c_int, *const c_int) -> *mut XVisualInfo = c"glXChooseVisual";
    create_context: fn(*mut c_void, *mut XVisualInfo, *mut c_void, c_int) -> *mut c_void = c"glXCreateContext";
    make_current: fn(*mut c_void, c_ulong, *mut c_void) -> c_int = c"glXMakeCurrent";
    swap_buffers: fn(*mut c_void, c_ulong) = c"glXSwapBuffers";
    destroy_context: fn(*mut c_void, *mut c_void) = c"glXDestroyContext";
    viewport: fn(c_int, c_int, c_int, c_int) = c"glViewport";
    clear_color: fn(f32, f32, f32, f32) = c"glClearColor";
    clear: fn(c_uint) = c"glClear";
    enable: fn(c_uint) = c"glEnable";
    disable: fn(c_uint) = c"glDisable";
    blend_func: fn(c_uint, c_uint) = c"glBlendFunc";
    begin: fn(c_uint) = c"glBegin";
    end: fn() = c"glEnd";
    color4f: fn(f32, f32, f32, f32) = c"glColor4f";
    vertex3f: fn(f32, f32, f32) = c"glVertex3f";
    tex_coord2f: fn(f32, f32) = c"glTexCoord2f";
    gen_textures: fn(c_int, *mut c_uint) = c"glGenTextures";
    bind_texture: fn(c_uint, c_uint) = c"glBindTexture";
    tex_parameteri: fn(c_uint, c_uint, c_int) = c"glTexParameteri";
    tex_image_2d: fn(c_uint, c_int, c_int, c_int, c_int, c_int, c_uint, c_uint, *const c_void) = c"glTexImage2D";
    finish: fn() = c"glFinish";
    tex_sub_image_2d: fn(c_uint, c_int, c_int, c_int, c_int, c_int, c_uint, c_uint, *const c_void) = c"glTexSubImage2D";
    pixel_storei: fn(c_uint, c_int) = c"glPixelStorei";
    read_pixels: fn(c_int, c_int, c_int, c_int, c_uint, c_uint, *mut c_void) = c"glReadPixels";
    get_error: fn() -> c_uint = c"glGetError";
    get_string: fn(c_uint) -> *const c_char = c"glGetString";
});

struct Args {
    frames: u64,
    size: u32,
    fps: bool,
    seconds: f64,
    upload: bool,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        frames: 60,
        size: 128,
        fps: false,
        seconds: 0.0,
        upload: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
        let bad = || format!("bad value {v:?} for {k}");
        match k.as_str() {
            "--frames" => a.frames = v.parse().map_err(|_| bad())?,
            "--size" => a.size = v.parse().map_err(|_| bad())?,
            "--seconds" => a.seconds = v.parse().map_err(|_| bad())?,
            "--upload" => a.upload = v.parse().map_err(|_| bad())?,
            "--mode" => match v.as_str() {
                "hash" => a.fps = false,
                "fps" => a.fps = true,
                _ => return Err(format!("bad mode {v:?} (hash or fps)")),
            },
            _ => return Err(format!("unknown argument {k:?}")),
        }
    }
    Ok(a)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A texel pattern that depends on `seed`.
fn pattern(w: usize, h: usize, seed: u64) -> Vec<u8> {
    (0..w * h * 4)
        .map(|i| ((i as u64).wrapping_mul(2654435761) ^ seed.wrapping_mul(97)) as u8)
        .collect()
}

/// Draws frame `i` (deterministic).
///
/// # Safety
/// A current GL context whose functions are `gl`.
unsafe fn draw(gl: &Gl, i: u64, size: u32, tex: c_uint, upload: bool) {
    let f = i as f32;
    // SAFETY: plain GL calls on the current context.
    unsafe {
        (gl.viewport)(0, 0, size as c_int, size as c_int);
        (gl.clear_color)(0.1 + 0.01 * (i % 50) as f32, 0.2, 0.3, 1.0);
        (gl.clear)(GL_COLOR_BUFFER_BIT | GL_DEPTH_BUFFER_BIT);
        (gl.enable)(GL_DEPTH_TEST);
        (gl.begin)(GL_TRIANGLES);
        for k in 0..6 {
            let a = (f * 7.0 + k as f32 * 60.0).to_radians();
            let (s, c) = a.sin_cos();
            let z = -0.5 + 0.15 * k as f32;
            (gl.color4f)(0.2 * k as f32, 1.0 - 0.15 * k as f32, 0.5, 1.0);
            (gl.vertex3f)(0.0, 0.0, z);
            (gl.vertex3f)(0.9 * c, 0.9 * s, -z);
            (gl.vertex3f)(0.9 * (a + 0.7).cos(), 0.9 * (a + 0.7).sin(), z);
        }
        (gl.end)();
        (gl.disable)(GL_DEPTH_TEST);
        // A blended quad over the triangles.
        (gl.enable)(GL_BLEND);
        (gl.blend_func)(GL_SRC_ALPHA, GL_ONE_MINUS_SRC_ALPHA);
        (gl.color4f)(1.0, 1.0, 0.0, 0.4);
        (gl.begin)(GL_QUADS);
        let o = 0.3 * (f * 0.1).sin();
        for (x, y) in [(-0.6, -0.2), (0.2, -0.2), (0.2, 0.6), (-0.6, 0.6)] {
            (gl.vertex3f)(x + o, y, 0.0);
        }
        (gl.end)();
        (gl.disable)(GL_BLEND);
        // A textured quad (the texture was uploaded, and flushed, before the first frame;
        // with `--upload`, part of it again now).
        (gl.bind_texture)(GL_TEXTURE_2D, tex);
        if upload {
            let sub = pattern(8, 8, i);
            (gl.tex_sub_image_2d)(
                GL_TEXTURE_2D,
                0,
                (i % 4) as c_int * 8,
                8,
                8,
                8,
                GL_RGBA,
                GL_UNSIGNED_BYTE,
                sub.as_ptr() as *const c_void,
            );
        }
        (gl.enable)(GL_TEXTURE_2D);
        (gl.color4f)(1.0, 1.0, 1.0, 1.0);
        (gl.begin)(GL_QUADS);
        for (u, v, x, y) in [
            (0.0, 0.0, 0.4, -0.9),
            (1.0, 0.0, 0.9, -0.9),
            (1.0, 1.0, 0.9, -0.4),
            (0.0, 1.0, 0.4, -0.4),
        ] {
            (gl.tex_coord2f)(u, v);
            (gl.vertex3f)(x, y, 0.0);
        }
        (gl.end)();
        (gl.disable)(GL_TEXTURE_2D);
    }
}

fn run() -> Result<(), String> {
    let a = args()?;
    let x11 = X11::load(&Lib::open(c"libX11.so.6")?)?;
    let gl = Gl::load(&Lib::open(c"libGL.so.1")?)?;
    // SAFETY: Xlib and GLX calls with valid arguments, in order; the window and context live
    // until the end of this block.
    unsafe {
        let dpy = (x11.open_display)(std::ptr::null());
        if dpy.is_null() {
            return Err("cannot open the X display (is DISPLAY set?)".into());
        }
        let screen = (x11.default_screen)(dpy);
        let attribs = [
            GLX_RGBA,
            GLX_RED_SIZE,
            8,
            GLX_GREEN_SIZE,
            8,
            GLX_BLUE_SIZE,
            8,
            GLX_DEPTH_SIZE,
            16,
            GLX_DOUBLEBUFFER,
            0,
        ];
        let vi = (gl.choose_visual)(dpy, screen, attribs.as_ptr());
        if vi.is_null() {
            return Err("no double-buffered RGBA visual with depth".into());
        }
        let root = (x11.root_window)(dpy, screen);
        let mut swa = XSetWindowAttributes {
            colormap: (x11.create_colormap)(dpy, root, (*vi).visual, ALLOC_NONE),
            ..Default::default()
        };
        let win = (x11.create_window)(
            dpy,
            root,
            0,
            0,
            a.size,
            a.size,
            0,
            (*vi).depth,
            INPUT_OUTPUT,
            (*vi).visual,
            CW_BORDER_PIXEL | CW_COLORMAP | CW_EVENT_MASK,
            &mut swa,
        );
        (x11.map_window)(dpy, win);
        (x11.sync)(dpy, 0);
        let ctx = (gl.create_context)(dpy, vi, std::ptr::null_mut(), 1);
        if ctx.is_null() || (gl.make_current)(dpy, win, ctx) == 0 {
            return Err("cannot make a GLX context current".into());
        }
        let renderer = CStr::from_ptr((gl.get_string)(GL_RENDERER)).to_string_lossy();
        eprintln!("GL_RENDERER = {renderer}");
        let mut tex = 0;
        (gl.gen_textures)(1, &mut tex);
        (gl.bind_texture)(GL_TEXTURE_2D, tex);
        (gl.tex_parameteri)(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
        (gl.tex_parameteri)(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
        let base = pattern(32, 32, 12345);
        (gl.tex_image_2d)(
            GL_TEXTURE_2D,
            0,
            GL_RGBA as c_int,
            32,
            32,
            0,
            GL_RGBA,
            GL_UNSIGNED_BYTE,
            base.as_ptr() as *const c_void,
        );
        (gl.finish)();
        (gl.pixel_storei)(GL_PACK_ALIGNMENT, 1);
        let mut pixels = vec![0u8; (a.size * a.size * 4) as usize];
        let start = Instant::now();
        let limit = Duration::from_secs_f64(a.seconds);
        let mut i = 0u64;
        while i < a.frames || (a.seconds > 0.0 && start.elapsed() < limit) {
            draw(&gl, i, a.size, tex, a.upload);
            if !a.fps {
                (gl.read_pixels)(
                    0,
                    0,
                    a.size as c_int,
                    a.size as c_int,
                    GL_RGBA,
                    GL_UNSIGNED_BYTE,
                    pixels.as_mut_ptr() as *mut c_void,
                );
                println!("frame {i} {:016x}", fnv1a(&pixels));
            }
            (gl.swap_buffers)(dpy, win);
            i += 1;
            if a.seconds > 0.0 && a.frames > 0 && i >= a.frames && start.elapsed() >= limit {
                break;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let err = (gl.get_error)();
        if a.fps {
            // CPU time of the whole process (GL, zink, lavapipe's threads) per frame: less
            // sensitive than the frame rate to other processes on a shared machine.
            let mut ru: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_SELF, &mut ru);
            let cpu = ru.ru_utime.tv_sec as f64
                + ru.ru_utime.tv_usec as f64 * 1e-6
                + ru.ru_stime.tv_sec as f64
                + ru.ru_stime.tv_usec as f64 * 1e-6;
            println!(
                "fps {:.2} ({i} frames in {secs:.2} s, {:.1} us of CPU per frame)",
                i as f64 / secs,
                cpu * 1e6 / i.max(1) as f64
            );
        }
        (gl.make_current)(dpy, 0, std::ptr::null_mut());
        (gl.destroy_context)(dpy, ctx);
        (x11.destroy_window)(dpy, win);
        (x11.close_display)(dpy);
        if err != 0 {
            return Err(format!("GL error 0x{err:x}"));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agx-gl-frames: {e}");
            ExitCode::FAILURE
        }
    }
}
