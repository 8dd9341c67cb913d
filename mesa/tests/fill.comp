#version 450
// data[i] = 3 * i + seed: a result only the GPU writes.
layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 0) buffer Data { uint data[]; };
layout(push_constant) uniform Push { uint seed; };
void main() { uint i = gl_GlobalInvocationID.x; data[i] = 3u * i + seed; }
