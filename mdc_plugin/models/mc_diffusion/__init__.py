"""MC-Diffusion: D3PM mask-and-replace caption head and condition guidance."""
