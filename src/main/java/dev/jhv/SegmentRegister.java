package dev.jhv;

/** The segment registers whose whole state {@link Vcpu#segment} reads and writes. */
public enum SegmentRegister {
    CS, SS, DS, ES, FS, GS, LDTR, TR
}
