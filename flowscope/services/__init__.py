"""Domain services. A module or package here that defines `attach(app)` is a component."""
