"""ddpayne.io"""
