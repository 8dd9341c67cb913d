#version 450
// A triangle over the upper-left half of the framebuffer, from gl_VertexIndex alone.
void main() {
    vec2 p[3] = vec2[](vec2(-1.0, -1.0), vec2(1.0, -1.0), vec2(-1.0, 1.0));
    gl_Position = vec4(p[gl_VertexIndex], 0.0, 1.0);
}
