/*
 * gl_robust: a robust OpenGL ES 3 context on surfaceless EGL (EGL_MESA_platform_surfaceless,
 * EGL_EXT_create_context_robustness with LOSE_CONTEXT_ON_RESET, GL_KHR_robustness) that
 * draws into an FBO frame after frame, flushes each frame, finishes every few, and polls
 * glGetGraphicsResetStatusKHR after every flush and finish. Prints one JSON line: frames,
 * flushes, finishes, the reset status seen (and when), GL errors, which call returned what, and
 * whether the final pixels are right.
 *
 *   gl_robust [--frames N] [--finish-every K] [--size S|WxH] [--check-results]
 *
 * --size: the FBO is S x S or W x H (default 128): bigger passes cost more GPU time.
 *
 * --finish-every 0 never calls glFinish: Mesa's noop drm-shim cannot export a sync_file (its
 * SYNCOBJ_HANDLE_TO_FD answers 0 without an fd), and Gallium asahi's glFinish fence asserts on
 * that, so under that shim only flushes can be exercised.
 *
 * Exit: 0 no reset and no error (with --check-results, the pixels right too); 1 a reset, an
 * error or wrong pixels (the summary says which); 2 setup failed (no display, no robust
 * context).
 *
 * After a reset it stops drawing, and tries a fresh robust context to see whether the driver
 * gives a working one (reported as "new_context").
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <EGL/egl.h>
#include <EGL/eglext.h>
#include <GLES3/gl3.h>
#include <GLES2/gl2ext.h>

static unsigned W = 128, H = 128;

static PFNGLGETGRAPHICSRESETSTATUSKHRPROC get_reset_status;

static struct {
   unsigned gl_errors;
   char first_call[64];
   unsigned first_error;
} err;

/* Records the first GL error after `call`. */
static bool
gl_ok(const char *call)
{
   GLenum e = glGetError();
   if (e == GL_NO_ERROR)
      return true;
   if (!err.gl_errors++) {
      snprintf(err.first_call, sizeof(err.first_call), "%s", call);
      err.first_error = e;
   }
   fprintf(stderr, "gl_robust: %s: GL error 0x%x\n", call, e);
   return false;
}

static const char *
reset_name(GLenum s)
{
   switch (s) {
   case GL_NO_ERROR: return "none";
   case GL_GUILTY_CONTEXT_RESET_KHR: return "guilty";
   case GL_INNOCENT_CONTEXT_RESET_KHR: return "innocent";
   case GL_UNKNOWN_CONTEXT_RESET_KHR: return "unknown";
   default: return "invalid";
   }
}

static bool
has_ext(const char *list, const char *name)
{
   size_t n = strlen(name);
   for (const char *p = list; p && (p = strstr(p, name)); p += n) {
      if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
         return true;
   }
   return false;
}

static EGLContext
robust_context(EGLDisplay dpy)
{
   const EGLint attrs[] = {
      EGL_CONTEXT_MAJOR_VERSION, 3,
      EGL_CONTEXT_OPENGL_ROBUST_ACCESS_EXT, EGL_TRUE,
      EGL_CONTEXT_OPENGL_RESET_NOTIFICATION_STRATEGY_EXT, EGL_LOSE_CONTEXT_ON_RESET_EXT,
      EGL_NONE,
   };
   return eglCreateContext(dpy, EGL_NO_CONFIG_KHR, EGL_NO_CONTEXT, attrs);
}

static GLuint
compile(GLenum type, const char *src)
{
   GLuint s = glCreateShader(type);
   glShaderSource(s, 1, &src, NULL);
   glCompileShader(s);
   GLint ok = 0;
   glGetShaderiv(s, GL_COMPILE_STATUS, &ok);
   if (!ok) {
      char log[512] = "";
      glGetShaderInfoLog(s, sizeof(log), NULL, log);
      fprintf(stderr, "gl_robust: shader: %s\n", log);
   }
   return s;
}

/* An FBO with a colour renderbuffer and a program drawing one green triangle. */
static bool
setup_scene(GLuint *prog)
{
   GLuint rb, fbo;
   glGenRenderbuffers(1, &rb);
   glBindRenderbuffer(GL_RENDERBUFFER, rb);
   glRenderbufferStorage(GL_RENDERBUFFER, GL_RGBA8, W, H);
   glGenFramebuffers(1, &fbo);
   glBindFramebuffer(GL_FRAMEBUFFER, fbo);
   glFramebufferRenderbuffer(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_RENDERBUFFER, rb);
   if (glCheckFramebufferStatus(GL_FRAMEBUFFER) != GL_FRAMEBUFFER_COMPLETE) {
      fprintf(stderr, "gl_robust: framebuffer incomplete\n");
      return false;
   }
   const char *vs = "#version 300 es\n"
                    "void main() {\n"
                    "  vec2 p[3] = vec2[](vec2(-0.5, -0.5), vec2(0.5, -0.5), vec2(0.0, 0.5));\n"
                    "  gl_Position = vec4(p[gl_VertexID], 0.0, 1.0);\n"
                    "}\n";
   const char *fs = "#version 300 es\n"
                    "precision mediump float;\n"
                    "out vec4 color;\n"
                    "void main() { color = vec4(0.0, 1.0, 0.0, 1.0); }\n";
   *prog = glCreateProgram();
   glAttachShader(*prog, compile(GL_VERTEX_SHADER, vs));
   glAttachShader(*prog, compile(GL_FRAGMENT_SHADER, fs));
   glLinkProgram(*prog);
   GLint ok = 0;
   glGetProgramiv(*prog, GL_LINK_STATUS, &ok);
   GLuint vao;
   glGenVertexArrays(1, &vao);
   glBindVertexArray(vao);
   glViewport(0, 0, W, H);
   return ok && gl_ok("setup");
}

int
main(int argc, char **argv)
{
   unsigned frames = 300, finish_every = 10;
   bool check_results = false;
   for (int i = 1; i < argc; i++) {
      if (!strcmp(argv[i], "--frames") && i + 1 < argc)
         frames = (unsigned)strtoul(argv[++i], NULL, 0);
      else if (!strcmp(argv[i], "--finish-every") && i + 1 < argc)
         finish_every = (unsigned)strtoul(argv[++i], NULL, 0);
      else if (!strcmp(argv[i], "--size") && i + 1 < argc) {
         const char *arg = argv[++i];
         if (sscanf(arg, "%ux%u", &W, &H) != 2)
            W = H = (unsigned)strtoul(arg, NULL, 0);
      }
      else if (!strcmp(argv[i], "--check-results"))
         check_results = true;
      else {
         fprintf(stderr,
                 "usage: %s [--frames N] [--finish-every K] [--size S|WxH] [--check-results]\n",
                 argv[0]);
         return 2;
      }
   }
   if (W < 2 || H < 2 || W > 4096 || H > 4096) {
      fprintf(stderr, "gl_robust: need 2 <= W, H <= 4096\n");
      return 2;
   }

   const char *client = eglQueryString(EGL_NO_DISPLAY, EGL_EXTENSIONS);
   if (!has_ext(client, "EGL_MESA_platform_surfaceless")) {
      fprintf(stderr, "gl_robust: no EGL_MESA_platform_surfaceless\n");
      return 2;
   }
   PFNEGLGETPLATFORMDISPLAYEXTPROC get_platform_display =
      (PFNEGLGETPLATFORMDISPLAYEXTPROC)eglGetProcAddress("eglGetPlatformDisplayEXT");
   EGLDisplay dpy = get_platform_display(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY,
                                         NULL);
   EGLint major, minor;
   if (dpy == EGL_NO_DISPLAY || !eglInitialize(dpy, &major, &minor)) {
      fprintf(stderr, "gl_robust: eglInitialize failed: 0x%x\n", eglGetError());
      return 2;
   }
   const char *dexts = eglQueryString(dpy, EGL_EXTENSIONS);
   if (!has_ext(dexts, "EGL_EXT_create_context_robustness") ||
       !has_ext(dexts, "EGL_KHR_no_config_context") ||
       !has_ext(dexts, "EGL_KHR_surfaceless_context")) {
      fprintf(stderr, "gl_robust: missing EGL extensions: %s\n", dexts);
      return 2;
   }
   eglBindAPI(EGL_OPENGL_ES_API);
   EGLContext ctx = robust_context(dpy);
   if (ctx == EGL_NO_CONTEXT || !eglMakeCurrent(dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, ctx)) {
      fprintf(stderr, "gl_robust: no robust context: 0x%x\n", eglGetError());
      return 2;
   }
   const char *renderer = (const char *)glGetString(GL_RENDERER);
   const char *version = (const char *)glGetString(GL_VERSION);
   if (!has_ext((const char *)glGetString(GL_EXTENSIONS), "GL_KHR_robustness")) {
      fprintf(stderr, "gl_robust: no GL_KHR_robustness\n");
      return 2;
   }
   get_reset_status =
      (PFNGLGETGRAPHICSRESETSTATUSKHRPROC)eglGetProcAddress("glGetGraphicsResetStatusKHR");
   GLint strategy = 0;
   glGetIntegerv(GL_RESET_NOTIFICATION_STRATEGY_KHR, &strategy);
   GLint robust = 0;
   glGetIntegerv(GL_CONTEXT_ROBUST_ACCESS_KHR, &robust);
   bool robust_access = robust != 0;
   if (!get_reset_status || strategy != GL_LOSE_CONTEXT_ON_RESET_KHR) {
      fprintf(stderr, "gl_robust: reset strategy 0x%x, not LOSE_CONTEXT_ON_RESET\n", strategy);
      return 2;
   }

   GLuint prog;
   if (!setup_scene(&prog))
      return 2;

   unsigned drawn = 0, flushes = 0, finishes = 0, polls = 0;
   GLenum reset = GL_NO_ERROR;
   const char *reset_after = "";
   unsigned reset_frame = 0;
   for (unsigned f = 0; f < frames && reset == GL_NO_ERROR; f++) {
      glClearColor(1.0f, 0.0f, 0.0f, 1.0f);
      glClear(GL_COLOR_BUFFER_BIT);
      glUseProgram(prog);
      glDrawArrays(GL_TRIANGLES, 0, 3);
      if (!gl_ok("glDrawArrays"))
         break;
      drawn++;
      glFlush();
      flushes++;
      polls++;
      if ((reset = get_reset_status()) != GL_NO_ERROR) {
         reset_after = "glFlush";
         reset_frame = f;
         break;
      }
      if (finish_every && (f + 1) % finish_every == 0) {
         glFinish();
         finishes++;
         polls++;
         if ((reset = get_reset_status()) != GL_NO_ERROR) {
            reset_after = "glFinish";
            reset_frame = f;
            break;
         }
      }
   }

   const char *pixels = "none";
   if (reset == GL_NO_ERROR && drawn) {
      GLubyte centre[4] = {0}, corner[4] = {0};
      glReadPixels(W / 2, H / 2, 1, 1, GL_RGBA, GL_UNSIGNED_BYTE, centre);
      glReadPixels(0, 0, 1, 1, GL_RGBA, GL_UNSIGNED_BYTE, corner);
      if (gl_ok("glReadPixels")) {
         bool ok = centre[0] == 0 && centre[1] == 255 && corner[0] == 255 && corner[1] == 0;
         pixels = ok ? "ok" : "wrong";
      }
      polls++;
      if ((reset = get_reset_status()) != GL_NO_ERROR) {
         reset_after = "glReadPixels";
         reset_frame = drawn;
      }
   }

   /* After a reset, does the driver hand out a working context? */
   const char *new_context = "not tried";
   if (reset != GL_NO_ERROR) {
      eglMakeCurrent(dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT);
      eglDestroyContext(dpy, ctx);
      ctx = robust_context(dpy);
      new_context = "failed";
      if (ctx != EGL_NO_CONTEXT && eglMakeCurrent(dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, ctx)) {
         GLuint p2;
         if (setup_scene(&p2)) {
            glClear(GL_COLOR_BUFFER_BIT);
            glUseProgram(p2);
            glDrawArrays(GL_TRIANGLES, 0, 3);
            glFinish();
            if (gl_ok("new context") && get_reset_status() == GL_NO_ERROR)
               new_context = "works";
         }
      }
   }

   printf("{\"program\":\"gl_robust\",\"renderer\":\"%s\",\"version\":\"%s\","
          "\"robust_access\":%s,\"reset_strategy\":\"lose_context_on_reset\","
          "\"frames\":%u,\"flushes\":%u,\"finishes\":%u,\"reset_polls\":%u,"
          "\"reset_status\":\"%s\",\"reset_seen_after\":\"%s\",\"reset_frame\":%u,"
          "\"gl_errors\":%u,\"first_error_call\":\"%s\",\"first_error\":%u,"
          "\"pixels\":\"%s\",\"new_context\":\"%s\"}\n",
          renderer, version, robust_access ? "true" : "false", drawn, flushes, finishes, polls,
          reset_name(reset), reset_after, reset_frame, err.gl_errors, err.first_call,
          err.first_error, pixels, new_context);
   fflush(stdout);

   eglMakeCurrent(dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT);
   if (ctx != EGL_NO_CONTEXT)
      eglDestroyContext(dpy, ctx);
   eglTerminate(dpy);
   if (reset != GL_NO_ERROR || err.gl_errors)
      return 1;
   return check_results && strcmp(pixels, "ok") ? 1 : 0;
}
