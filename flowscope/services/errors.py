"""The error services raise for a request they refuse; its message is safe to show the caller
and should say what to do next (the MCP layer turns it into a tool error)."""


class ServiceError(ValueError):
    pass
