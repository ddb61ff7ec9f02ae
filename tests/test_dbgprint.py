"""DbgPrint from a real driver is rendered by Windows rules."""


def test_dbgprint_renders_windows_formats(load):
    lines = load("dbgprint").log()
    assert lines[:8] == [
        "lu=4000000000 then=next",          # %lu is 32 bits; the next slot still lines up
        "ld=-5",
        "I64x=fedcba9876543210",
        "I64u=18446744073709551615",
        "ws=wide \u00e9\u20ac",              # UTF-16 to UTF-8
        "wZ=counted",                        # honours UNICODE_STRING.Length
        "p=0000000000001234",               # %p: 16 uppercase hex digits
        "s=narrow c=Z x=0000beef",
    ]
    assert lines[8] == "path=\\Registry\\Machine\\System\\CurrentControlSet\\Services\\dbgprint"
