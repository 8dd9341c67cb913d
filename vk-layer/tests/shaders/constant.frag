#version 450
// A constant colour, half transparent (so blending changes the result).
layout(location = 0) out vec4 color;
void main() {
    color = vec4(1.0, 0.0, 0.0, 0.5);
}
