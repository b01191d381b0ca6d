# Declarations of the compiled RESP core, so other Cython modules can cimport
# the buffers and call their inline helpers without Python-level dispatch.

cdef class CommandBuffer:
    cdef char* _data
    cdef Py_ssize_t _len
    cdef Py_ssize_t _cap
    cdef bint _utf8_strict
    cdef readonly str encoding
    cdef readonly str errors
    cdef bytes _enc_b
    cdef bytes _err_b
    cdef dict _names
    cdef bint _busy

    cdef int _grow(self, Py_ssize_t extra) except -1
    cdef inline int _ensure(self, Py_ssize_t extra) except -1
    cdef inline void _put(self, const char* p, Py_ssize_t n) noexcept
    cdef int _write_count(self, char tag, Py_ssize_t n) except -1
    cdef int _write_bulk(self, const char* p, Py_ssize_t n) except -1
    cdef int _write_arg(self, object v) except -1
    cdef inline int _write_text(self, object v) except -1
    cdef int _write_double(self, double d) except -1
    cdef int _write_arg_slow(self, object v, bint batch) except -1
    cdef int _write_arg_slow_body(self, object v, bint batch) except -1
    cdef inline int _check_idle(self) except -1
    cdef Py_ssize_t _batch(self, object args, list snapshot) except -1
    cdef bytes _name_parts(self, object name, Py_ssize_t* count)
    cdef inline int _fixed_head(self, bytes name, Py_ssize_t n) except -1
    cdef inline int _write_arg_batch(self, object v) except -1


cdef class Reader:
    cdef char* _buf
    cdef Py_ssize_t _start
    cdef Py_ssize_t _end
    cdef Py_ssize_t _cap
    cdef object _protocol_error
    cdef object _reply_error
    cdef object _not_enough
    cdef object _encoding
    cdef object _errors
    cdef bytes _enc_b
    cdef bytes _err_b
    cdef int _decode_mode
    cdef list _stack
    cdef object _decode_error
    cdef object _failed
    cdef bint _busy
    cdef long long _max_bulk

    cdef object _text(self, const char* p, Py_ssize_t n, bint decode)
    cdef object _error_reply(self, const char* p, Py_ssize_t n)
    cdef int _map_set(self, object d, object key, object value) except -1
    cdef object _fail(self, str msg)
    cdef object _parse(self, bint decode)
    cdef object _next(self, bint decode)
