#version 450
// Writes a marker: the test sees whether this work has finished.
layout(local_size_x = 1) in;
layout(std430, binding = 0) buffer B {
    uint marker;
} b;
void main() {
    b.marker = 1u;
}
