"""Tools for developing lam (code figures); not used at run time."""
